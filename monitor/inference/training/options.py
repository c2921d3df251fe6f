"""What a training run is told (``TrainOptions``) and what it tells back (progress, the result).

Plain values only: no TensorFlow, no data reading, so the command line can build and check
options, and show progress, without importing either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from monitor.exceptions import ConfigurationError
from monitor.inference.model_dir import InferenceSettings

ARCHITECTURES = ("auto", "windows", "detector")


@dataclass(frozen=True)
class TrainOptions:
    """How to train; the defaults are the full recipe measured on FlickrLogos-27.

    ``backbone_weights`` is "imagenet" or the path of the MobileNetV2 .h5 weights. ``negatives_dir``
    is an optional folder of logo-free photos. ``test_fraction`` of the photos is held out (listed
    in the model's split file, never trained on); ``validation_fraction`` chooses the epochs, the
    temperature and the threshold; ``finetune_warmup_epochs`` is how long the fine-tuning's
    learning rate takes to rise to ``finetune_learning_rate`` (0: at once). ``no_logo_folder``
    names the folder of logo-free photos in a folder-per-brand dataset. ``finetune_from_block`` is
    the first MobileNetV2 block (1-16) fine-tuned. ``max_false_positive_rate`` bounds the share of
    logo-free validation pictures the chosen threshold may give a brand, and
    ``false_positive_confidence`` how sure the recipe must be of that bound: the threshold keeps
    the one-sided upper confidence limit of the validation rate within it, not only the rate seen,
    because the validation estimate is loose (324 pictures cut from 108 photos on FlickrLogos-27)
    and the held-out rate came out above the validation rate for every model measured (0: the rate
    seen, as before). ``no_logo_weight_share`` is the share of the loss the "no logo" samples
    carry (None: every class alike, "no logo" being one of them).

    ``architecture="auto"`` (the default) trains the one-pass detector on a dataset with logo
    boxes (the FlickrLogos layout) and the window classifier on a folder per brand, whose photos
    have no boxes for a detector to learn where logos are from (``resolved_architecture``).
    ``architecture="detector"`` trains the one-pass detector (``detector_*``: its input size,
    epochs, batch, learning rate and the width of its pyramid and head;
    ``detector_serving_size`` is the input size the saved detector answers at, None for the
    training size; ``detector_paste_share`` the share of its training views other training logos
    and background patches are pasted on, ``monitor.inference.pasting``, off by default: on
    FlickrLogos-27 it moved validation within the run-to-run spread, README "Copy-paste views")
    and, when the data has logo-free regions, its second look (``verifier``): a window classifier
    at ``verifier_input_size`` pixels on windows ``verifier_context`` times the box around the
    detector's ``verifier_candidates`` best candidates, trained on the detector's own candidates
    plus ``verifier_jitters`` jittered windows per logo, fine-tuned from block
    ``verifier_finetune_from_block`` at ``verifier_learning_rate``, its "no logo" windows carrying
    ``verifier_no_logo_share`` of its loss.

    ``unboxed_logo_lists`` reads the dataset's list of photos whose boxes miss logos they show
    (``monitor.inference.unboxed``): no logo-free picture is cut from those.
    ``added_logo_boxes`` also trains on the boxes such a list draws around the logos the
    annotations missed (training photos only); off by default: on FlickrLogos-27 its 141 boxes
    moved validation within the run-to-run spread and boxed fewer logos right on one split
    (README, "Boxes for the logos the annotations missed"). ``added_logo_box_extents=False``
    trains only the added boxes' centres and brands, not their sides, which were drawn another
    way than the annotations' (the box regression skips their cells).
    """

    epochs_head: int = 10
    epochs_finetune: int = 8
    image_size: int = 224
    batch_size: int = 32
    backbone_weights: str = "imagenet"
    negatives_dir: Path | None = None
    validation_fraction: float = 0.15
    test_fraction: float = 0.2
    seed: int = 0
    no_logo_folder: str | None = None
    windows_per_box: int = 8
    backgrounds_per_photo: int = 10
    hard_negatives: int = 1500
    hard_negative_candidates_per_photo: int = 10
    head_learning_rate: float = 1e-3
    finetune_learning_rate: float = 1e-4
    finetune_warmup_epochs: float = 0.0
    finetune_from_block: int = 9
    dropout_rate: float = 0.3
    pooling: str = "average_max"
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    max_context: float = 4.0
    box_loss_weight: float = 1.0
    max_false_positive_rate: float = 0.03
    false_positive_confidence: float = 0.9
    no_logo_weight_share: float | None = None
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    max_image_pixels: int = 50_000_000
    architecture: str = "auto"
    detector_input_size: int = 352
    detector_serving_size: int | None = None
    detector_epochs: int = 20
    detector_batch_size: int = 16
    detector_learning_rate: float = 2e-3
    detector_head_width: int = 128
    detector_paste_share: float = 0.0
    verifier: bool = True
    verifier_input_size: int = 160
    verifier_context: float = 1.6
    verifier_candidates: int = 3
    verifier_jitters: int = 4
    verifier_epochs_head: int = 8
    verifier_epochs_finetune: int = 8
    verifier_learning_rate: float = 3e-4
    verifier_finetune_from_block: int = 9
    verifier_no_logo_share: float = 0.5
    verifier_fuse_brands: bool = True
    unboxed_logo_lists: bool = True
    added_logo_boxes: bool = False
    added_logo_box_extents: bool = True

    def __post_init__(self) -> None:
        problems = _option_problems(self)
        if problems:
            raise ConfigurationError("invalid training options: " + "; ".join(problems))


def resolved_architecture(options: TrainOptions, *, dataset_layout: str) -> TrainOptions:
    """``options`` with ``auto`` made concrete for a dataset of ``dataset_layout``.

    Boxes ("flickr") train the detector: it finds small logos and boxes them at a fraction of the
    window classifier's cost. A folder per brand has no boxes, so the detector could only learn
    each photo whole as its logo, which the window classifier's windows already do.
    """
    if options.architecture != "auto":
        return options
    return replace(options, architecture="detector" if dataset_layout == "flickr" else "windows")


def _option_problems(options: TrainOptions) -> list[str]:
    """Every bad value in ``options``, in words."""
    problems = []
    if options.epochs_head < 1:
        problems.append("epochs_head must be at least 1")
    if options.epochs_finetune < 0:
        problems.append("epochs_finetune must be 0 or more")
    if not 32 <= options.image_size <= 640:
        problems.append("image_size must be between 32 and 640")
    if options.batch_size < 1 or options.windows_per_box < 1 or options.backgrounds_per_photo < 0:
        problems.append("batch_size and windows_per_box must be positive")
    if options.hard_negatives < 0 or options.hard_negative_candidates_per_photo < 0:
        problems.append("hard_negatives and hard_negative_candidates_per_photo must be 0 or more")
    if not 0 <= options.validation_fraction < 1 or not 0 <= options.test_fraction < 1:
        problems.append("validation_fraction and test_fraction must be in [0, 1)")
    elif options.validation_fraction + options.test_fraction >= 0.9:
        problems.append("validation_fraction + test_fraction must leave photos to train on")
    if (
        not 1 <= options.finetune_from_block <= 16
        or not 1 <= options.verifier_finetune_from_block <= 16
    ):
        problems.append(
            "finetune_from_block and verifier_finetune_from_block must be MobileNetV2 blocks "
            "between 1 and 16"
        )
    if not 0.0 <= options.detector_paste_share <= 1.0:
        problems.append("detector_paste_share must be between 0 and 1")
    if not 8 <= options.detector_head_width <= 512:
        problems.append("detector_head_width must be between 8 and 512")
    if not 0 <= options.dropout_rate < 1:
        problems.append("dropout_rate must be in [0, 1)")
    if options.pooling not in ("average", "average_max"):
        problems.append("pooling must be 'average' or 'average_max'")
    if not 0 <= options.label_smoothing < 1 or options.weight_decay < 0:
        problems.append("label_smoothing must be in [0, 1) and weight_decay 0 or more")
    if options.max_context < 1:
        problems.append("max_context must be at least 1")
    if not 0 <= options.max_false_positive_rate <= 1:
        problems.append("max_false_positive_rate must be in [0, 1]")
    if not 0 <= options.false_positive_confidence < 1:
        problems.append("false_positive_confidence must be in [0, 1)")
    if options.architecture not in ARCHITECTURES:
        problems.append("architecture must be 'auto', 'windows' or 'detector'")
    for name in ("detector_input_size", "detector_serving_size"):
        size = getattr(options, name)  # the serving size may be None: the training size
        if size is not None and (not 64 <= size <= 1024 or size % 32):
            problems.append(f"{name} must be a multiple of 32 between 64 and 1024")
    if options.detector_epochs < 1:
        problems.append("detector_epochs must be at least 1")
    if options.detector_batch_size < 1 or options.detector_learning_rate <= 0:
        problems.append("detector_batch_size and detector_learning_rate must be positive")
    if not 32 <= options.verifier_input_size <= 640 or options.verifier_context < 1:
        problems.append("verifier_input_size must be in [32, 640] and verifier_context >= 1")
    if options.verifier_candidates < 1 or options.verifier_jitters < 0:
        problems.append("verifier_candidates must be positive and verifier_jitters 0 or more")
    if options.verifier_epochs_head < 1 or options.verifier_epochs_finetune < 0:
        problems.append("verifier_epochs_head must be positive, verifier_epochs_finetune >= 0")
    if options.finetune_warmup_epochs < 0:
        problems.append("finetune_warmup_epochs must be 0 or more")
    if options.verifier_learning_rate <= 0:
        problems.append("verifier_learning_rate must be positive")
    shares = [options.verifier_no_logo_share]
    if options.no_logo_weight_share is not None:
        shares.append(options.no_logo_weight_share)
    if not all(0 < share < 1 for share in shares):
        problems.append("no_logo_weight_share and verifier_no_logo_share must be in (0, 1)")
    return problems


@dataclass(frozen=True)
class TrainingProgress:
    """One step of training, for progress bars: ``completed`` of ``total`` in ``stage``.

    Stages, in order: "reading", "features", "head", "finetune", "calibrating", "saving"; a
    detector has "fitting" instead of the three in the middle, then its verifier's "verifier"
    (the detector's candidates) and "verifier features", "verifier head", "verifier finetune".
    ``epoch``/``epochs`` are set during the head and fine-tuning stages; ``metrics`` holds the
    running loss and accuracy (and validation values at the end of an epoch). ``warning``, set on
    a few "reading" steps before any network runs, is one line on what the data cannot teach.
    """

    stage: str
    completed: int
    total: int
    epoch: int | None = None
    epochs: int | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    message: str = ""
    warning: str = ""


@dataclass(frozen=True)
class ModelInfo:
    """What training produced: where the model is and what it measured."""

    model_dir: Path
    version: str
    labels: tuple[str, ...]
    metrics: dict[str, Any]
    training_seconds: float
    knows_no_logo: bool = True
    warnings: tuple[str, ...] = ()


Progress = Callable[[TrainingProgress], None]


def no_progress(step: TrainingProgress) -> None:
    """Progress sink used when the caller gives none."""
