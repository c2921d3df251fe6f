"""Training a logo model: ``train_model(dataset_dir=..., out_dir=..., options=...)``.

The recipe, step by step (each measured on FlickrLogos-27; see ``bench/train_flickr.py``):

1. Read the dataset (FlickrLogos-style or folder per brand) and split it **by photo** into train,
   validation and test; the split is written into the model directory so ``monitor evaluate``
   later uses exactly the photos training never saw.
2. Draw samples (``monitor.inference.samples``): windows around each logo at several scales and
   positions, augmented; logo-free windows of the same photos (and of ``negatives_dir``) as the
   "no logo" class. Classes are weighted so each brand and "no logo" count alike.
3. Run the frozen lower MobileNetV2 (ImageNet weights) once over every sample and cache its output.
4. Fit the head (classes + box) on pooled features (average and maximum). Mine hard negatives:
   score logo-free windows placed as the classifier places them at work and add those the head
   most takes for a logo to the "no logo" class. Then fine-tune the
   backbone from block 9 up with the head at a low learning rate, batch norm frozen; each stage
   keeps its best epoch on validation, fine-tuning the average of its late epochs' weights when
   that validates better.
5. Calibrate: fit a temperature on validation windows (ECE before and after is recorded), then
   choose the no-logo threshold on validation photos and logo-free regions with the multi-scale
   classifier exactly as it runs in use.
6. Save one Keras model on raw pixels, its metadata, metrics, training curve and split.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from monitor.exceptions import ConfigurationError, DatasetError, ImageDecodeError
from monitor.inference.datasets import (
    Dataset,
    LabeledPhoto,
    PhotoSplit,
    held_out_negatives,
    photos_named,
    read_dataset,
    read_negative_photos,
    split_by_photo,
)
from monitor.inference.model_dir import (
    CURVE_FILE,
    METRICS_FILE,
    MODEL_FILE,
    SPLIT_FILE,
    InferenceSettings,
    ModelMetadata,
    new_version,
    utc_timestamp,
    write_json,
    write_metadata,
)
from monitor.inference.pixels import open_image
from monitor.inference.samples import SampleSpec, SamplingPlan, plan_samples

BACKBONE_NAME = "MobileNetV2"
VALIDATION_NEGATIVES_PER_PHOTO = 3
MIN_TRAINING_PHOTOS_PER_CLASS = 10
"""Below this many training photos a class gets a warning: too few to learn its variety from."""
MIN_VALIDATION_LOGO_PHOTOS = 5
"""Below this many validation photos with a logo the threshold is chosen on too few answers."""


@dataclass(frozen=True)
class TrainOptions:
    """How to train; the defaults are the full recipe measured on FlickrLogos-27.

    ``backbone_weights`` is "imagenet" or the path of the MobileNetV2 .h5 weights. ``negatives_dir``
    is an optional folder of logo-free photos. ``test_fraction`` of the photos is held out (listed
    in the model's split file, never trained on); ``validation_fraction`` chooses the epochs, the
    temperature and the threshold. ``no_logo_folder`` names the folder of logo-free photos in a
    folder-per-brand dataset. ``finetune_from_block`` is the first MobileNetV2 block (1-16)
    fine-tuned. ``max_false_positive_rate`` bounds the share of logo-free validation pictures
    the chosen threshold may give a brand. It sits below the 5% a user may aim for because the
    validation estimate is loose: 324 pictures cut from 108 photos, and on FlickrLogos-27 the
    held-out rate came out 1 to 4 points above the validation rate for every model measured.
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
    finetune_from_block: int = 9
    dropout_rate: float = 0.3
    pooling: str = "average_max"
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    max_context: float = 4.0
    box_loss_weight: float = 1.0
    max_false_positive_rate: float = 0.03
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    max_image_pixels: int = 50_000_000

    def __post_init__(self) -> None:
        problems = _option_problems(self)
        if problems:
            raise ConfigurationError("invalid training options: " + "; ".join(problems))


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
    if not 1 <= options.finetune_from_block <= 16:
        problems.append("finetune_from_block must be a MobileNetV2 block between 1 and 16")
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
    return problems


@dataclass(frozen=True)
class TrainingProgress:
    """One step of training, for progress bars: ``completed`` of ``total`` in ``stage``.

    Stages, in order: "reading", "features", "head", "finetune", "calibrating", "saving".
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


def _no_progress(step: TrainingProgress) -> None:
    """Progress sink used when the caller gives none."""


@dataclass
class _Prepared:
    """The data of one training run, read and split, before any network runs."""

    dataset: Dataset
    split: PhotoSplit
    train_photos: list[LabeledPhoto]
    validation_photos: list[LabeledPhoto]
    train_specs: list[SampleSpec]
    validation_specs: list[SampleSpec]
    warnings: tuple[str, ...] = ()

    @property
    def knows_no_logo(self) -> bool:
        """Whether training has logo-free samples to learn a "no logo" answer from."""
        no_logo = len(self.dataset.labels)
        return any(spec.label == no_logo for spec in self.train_specs)


def train_model(
    *,
    dataset_dir: Path,
    out_dir: Path,
    options: TrainOptions,
    progress: Progress | None = None,
) -> ModelInfo:
    """Train a logo model on ``dataset_dir`` and write its model directory to ``out_dir``.

    Raises DatasetError for an unreadable dataset, ConfigurationError for bad options, weights or
    an ``out_dir`` that already holds files. The directory appears complete or not at all.
    """
    report = progress or _no_progress
    started = time.monotonic()
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    report(TrainingProgress("reading", 0, 1, message=f"reading {dataset_dir}"))
    prepared = _prepare(Path(dataset_dir), options)
    for warning in prepared.warnings:
        report(TrainingProgress("reading", 0, 1, warning=warning))
    report(TrainingProgress("reading", 1, 1, message=f"{len(prepared.train_specs)} samples"))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        metadata, metrics = _train_into(staging, prepared, options, report, started)
        staging.replace(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return ModelInfo(
        model_dir=out_dir,
        version=metadata.version,
        labels=metadata.labels,
        metrics=metrics,
        training_seconds=metadata.training_seconds,
        knows_no_logo=metadata.knows_no_logo,
        warnings=prepared.warnings,
    )


def _check_out_dir(out_dir: Path) -> None:
    """Refuse to overwrite: a model in use must not change under the workers."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigurationError(
            f"{out_dir} already exists and is not empty; give a new folder for the model"
        )
    if out_dir.exists():
        out_dir.rmdir()


def _prepare(dataset_dir: Path, options: TrainOptions) -> _Prepared:
    """Read, split and plan the samples of both training sides."""
    dataset = read_dataset(dataset_dir, no_logo_folder=options.no_logo_folder)
    split = split_by_photo(
        dataset.photos,
        validation_fraction=options.validation_fraction,
        test_fraction=options.test_fraction,
        seed=options.seed,
    )
    train_photos = photos_named(dataset, split.train)
    validation_photos = photos_named(dataset, split.validation)
    if options.negatives_dir is not None:
        train_photos, validation_photos = _add_negatives(
            train_photos, validation_photos, options.negatives_dir, options
        )
    _check_decodable([*train_photos, *validation_photos], max_pixels=options.max_image_pixels)
    rng = np.random.default_rng(options.seed)
    plan = SamplingPlan(
        windows_per_box=options.windows_per_box,
        backgrounds_per_photo=options.backgrounds_per_photo,
        max_context=options.max_context,
    )
    train_specs = plan_samples(train_photos, labels=dataset.labels, plan=plan, rng=rng)
    validation_plan = replace(plan, windows_per_box=3, backgrounds_per_photo=3, augment=False)
    validation_specs = plan_samples(
        validation_photos, labels=dataset.labels, plan=validation_plan, rng=rng
    )
    if not train_specs:
        raise DatasetError(f"{dataset_dir} gives no training samples")
    prepared = _Prepared(
        dataset, split, train_photos, validation_photos, train_specs, validation_specs
    )
    return replace(prepared, warnings=tuple(data_warnings(prepared, options)))


def data_warnings(prepared: _Prepared, options: TrainOptions) -> list[str]:
    """One line for each thing the data cannot teach that a user of the model would rely on.

    Said before any network runs (training takes minutes) and kept in ``metrics.json``.
    """
    warnings: list[str] = []
    if not prepared.knows_no_logo:
        warnings.append(
            "no logo-free pictures: the model cannot answer 'no logo' and will name its most "
            "probable class for every photo (give --no-logo-folder NAME or --negatives DIR to "
            "teach it)"
        )
    counts = {label: 0 for label in prepared.dataset.labels}
    for photo in prepared.train_photos:
        for brand in photo.brands:
            counts[brand] += 1
    few = sorted(label for label, count in counts.items() if count < MIN_TRAINING_PHOTOS_PER_CLASS)
    if few:
        listed = ", ".join(f"{label} ({counts[label]})" for label in few)
        warnings.append(
            f"classes with fewer than {MIN_TRAINING_PHOTOS_PER_CLASS} training photos: {listed}; "
            "expect them to be missed or confused"
        )
    if prepared.knows_no_logo:
        warnings.extend(_threshold_warnings(prepared, options))
    return warnings


def _threshold_warnings(prepared: _Prepared, options: TrainOptions) -> list[str]:
    """Whether validation has enough pictures of each kind to choose the no-logo threshold."""
    photos = prepared.validation_photos
    logo_photos = sum(photo.has_logo for photo in photos)
    negatives = len(validation_negatives(photos, seed=options.seed))
    warnings: list[str] = []
    if logo_photos < MIN_VALIDATION_LOGO_PHOTOS:
        warnings.append(
            f"only {logo_photos} validation photos with a logo: the no-logo threshold is chosen "
            "on too few answers to be trusted"
        )
    if negatives == 0 or 1 / negatives > options.max_false_positive_rate:
        warnings.append(
            f"only {negatives} logo-free validation pictures: a false-positive rate of "
            f"{options.max_false_positive_rate:.0%} cannot be measured with fewer than "
            f"{int(np.ceil(1 / options.max_false_positive_rate))}; the threshold may give "
            "logo-free photos a brand more often (add logo-free photos)"
        )
    return warnings


def _check_decodable(photos: Sequence[LabeledPhoto], *, max_pixels: int) -> None:
    """Decode every photo once before any network runs, so a bad file fails fast and clearly.

    (Samples are later rendered inside tf.data, where an exception would surface wrapped in a
    TensorFlow error after minutes of work.)
    """
    for photo in photos:
        try:
            open_image(photo.path, max_pixels=max_pixels)
        except ImageDecodeError as exc:
            raise DatasetError(f"cannot use {photo.name}: {exc}") from exc


def _add_negatives(
    train: list[LabeledPhoto],
    validation: list[LabeledPhoto],
    folder: Path,
    options: TrainOptions,
) -> tuple[list[LabeledPhoto], list[LabeledPhoto]]:
    """Logo-free photos of the negatives folder, split between training and validation."""
    negatives = read_negative_photos(Path(folder))
    order = np.random.default_rng([options.seed, 11]).permutation(len(negatives))
    validation_count = round(len(negatives) * options.validation_fraction)
    chosen = [negatives[index] for index in order]
    return train + chosen[validation_count:], validation + chosen[:validation_count]


def _train_into(
    target: Path,
    prepared: _Prepared,
    options: TrainOptions,
    report: Progress,
    started: float,
) -> tuple[ModelMetadata, dict[str, Any]]:
    """Fit, calibrate and save into ``target`` (the staging folder)."""
    from monitor.inference._tensorflow import import_tensorflow

    import_tensorflow()
    from monitor.inference import _training_run

    run = _training_run.TrainingRun(prepared=prepared, options=options, report=report)
    timings = run.fit()
    calibration = run.calibrate()
    report(TrainingProgress("saving", 0, 1, message=f"writing {target}"))
    training_seconds = time.monotonic() - started
    metadata = ModelMetadata(
        version=new_version(),
        labels=prepared.dataset.labels,
        input_size=options.image_size,
        no_logo_threshold=calibration["threshold"]["value"],
        temperature=calibration["temperature"],
        backbone=BACKBONE_NAME,
        backbone_weights=options.backbone_weights,
        created_at=utc_timestamp(),
        training_seconds=round(training_seconds, 1),
        inference=options.inference,
        knows_no_logo=prepared.knows_no_logo,
    )
    run.final_model().save(target / MODEL_FILE)
    write_metadata(target, metadata)
    metrics = _metrics(prepared, options, run, timings, calibration, training_seconds)
    write_json(target / METRICS_FILE, metrics)
    write_json(target / SPLIT_FILE, prepared.split.to_dict(dataset=prepared.dataset))
    from monitor.inference.plots import plot_training_curves

    plot_training_curves(run.curves(), target / CURVE_FILE)
    report(TrainingProgress("saving", 1, 1, message="done"))
    return metadata, metrics


def _metrics(
    prepared: _Prepared,
    options: TrainOptions,
    run: Any,
    timings: dict[str, float],
    calibration: dict[str, Any],
    training_seconds: float,
) -> dict[str, Any]:
    """The metrics file: data sizes, per-stage results, calibration, threshold, timings."""
    no_logo = len(prepared.dataset.labels)
    return {
        "dataset": str(prepared.dataset.root),
        "layout": prepared.dataset.layout,
        "labels": list(prepared.dataset.labels),
        "knows_no_logo": prepared.knows_no_logo,
        "warnings": list(prepared.warnings),
        "photos": {
            "train": len(prepared.split.train),
            "validation": len(prepared.split.validation),
            "test": len(prepared.split.test),
        },
        "samples": {
            "train": len(prepared.train_specs),
            "train_no_logo": sum(spec.label == no_logo for spec in prepared.train_specs),
            "train_with_hard_negatives": len(prepared.train_specs)
            + run.hard_negative_summary.get("kept", 0),
            "validation": len(prepared.validation_specs),
        },
        "stages": run.stage_summaries(),
        "hard_negatives": run.hard_negative_summary,
        "calibration": calibration,
        "timings_seconds": {**timings, "total": round(training_seconds, 1)},
        "options": _options_dict(options),
    }


def _options_dict(options: TrainOptions) -> dict[str, Any]:
    """Options as JSON-ready values."""
    values: dict[str, Any] = {}
    for name in options.__dataclass_fields__:
        value = getattr(options, name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, InferenceSettings):
            value = {**value.__dict__, "grids": list(value.grids)}
        values[name] = value
    return values


def class_weights(labels: Sequence[int] | np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class weights so every class present counts as much in the loss ("balanced")."""
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def validation_negatives(
    photos: Sequence[LabeledPhoto], *, seed: int
) -> list[tuple[LabeledPhoto, Any]]:
    """Logo-free validation pictures: whole logo-free photos, then regions outside every box.

    ``VALIDATION_NEGATIVES_PER_PHOTO`` per validation photo with a logo: the false-positive rate
    the threshold is held to is a small share, so it needs many pictures to be known.
    """
    logo_photos = [photo for photo in photos if photo.has_logo]
    whole = [(photo, (0, 0, *photo.size)) for photo in photos if not photo.has_logo]
    wanted = max(0, VALIDATION_NEGATIVES_PER_PHOTO * len(logo_photos) - len(whole))
    regions = held_out_negatives(logo_photos, count=wanted, seed=seed) if wanted else []
    return whole + regions


__all__ = [
    "ModelInfo",
    "TrainOptions",
    "TrainingProgress",
    "class_weights",
    "train_model",
]
