"""The data of one training run: read, split, checked and planned, before any network runs.

Everything here is NumPy and Pillow: a bad photo or a dataset that cannot teach what the model
will be relied on for is found in seconds, not after minutes of training.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL.Image import Image

from monitor.domain import Box
from monitor.exceptions import DatasetError, ImageDecodeError
from monitor.inference.calibration import confidence_attainable
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
from monitor.inference.detection import LogoDetector, PhotoCandidates
from monitor.inference.pixels import open_image
from monitor.inference.samples import SampleSpec, SamplingPlan, plan_samples
from monitor.inference.training.options import Progress, TrainingProgress, TrainOptions
from monitor.inference.unboxed import (
    UnboxedLogos,
    checked_additions,
    unboxed_logos,
    with_added_boxes,
    with_unboxed_logos,
)

VALIDATION_NEGATIVES_PER_PHOTO = 3
SCORING_CHUNK = 16
"""Validation pictures opened at a time while a run scores them (a few, not all, in memory)."""
MIN_TRAINING_PHOTOS_PER_CLASS = 10
"""Below this many training photos a class gets a warning: too few to learn its variety from."""
MIN_VALIDATION_LOGO_PHOTOS = 5
"""Below this many validation photos with a logo the threshold is chosen on too few answers."""


@dataclass
class PreparedData:
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


def prepare_data(dataset_dir: Path, options: TrainOptions) -> PreparedData:
    """Read, split and plan the samples of both training sides."""
    dataset = read_dataset(dataset_dir, no_logo_folder=options.no_logo_folder)
    listed = unboxed_logos(Path(dataset_dir)) if options.unboxed_logo_lists else UnboxedLogos()
    dataset = with_unboxed_logos(dataset, listed.photos)
    additions = checked_additions(dataset, listed.added)
    split = split_by_photo(
        dataset.photos,
        validation_fraction=options.validation_fraction,
        test_fraction=options.test_fraction,
        seed=options.seed,
    )
    # the list's added boxes teach the networks; validation keeps the annotations' (comparable)
    train_photos = photos_named(dataset, split.train)
    if options.added_logo_boxes:
        train_photos = with_added_boxes(
            train_photos, additions, extents=options.added_logo_box_extents
        )
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
    prepared = PreparedData(
        dataset, split, train_photos, validation_photos, train_specs, validation_specs
    )
    return replace(prepared, warnings=tuple(data_warnings(prepared, options)))


def data_warnings(prepared: PreparedData, options: TrainOptions) -> list[str]:
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


def _threshold_warnings(prepared: PreparedData, options: TrainOptions) -> list[str]:
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
    elif not confidence_attainable(
        negatives, options.max_false_positive_rate, options.false_positive_confidence
    ):
        warnings.append(
            f"only {negatives} logo-free validation pictures: too few to bound the false-positive "
            f"rate at {options.false_positive_confidence:.0%} confidence, so the threshold keeps "
            "to the rate seen (add logo-free photos for a safer threshold)"
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


def class_weights(
    labels: Sequence[int] | np.ndarray, num_classes: int, *, no_logo_share: float | None = None
) -> np.ndarray:
    """Per-class weights so every class present counts as much in the loss ("balanced").

    With ``no_logo_share``, the last class ("no logo") carries that share of the whole loss and
    the brands, still balanced among themselves, the rest. Balanced, "no logo" is one class of
    many, however many of the samples it holds, so a classifier learns the brands well but calls
    nearly every window a logo; a model whose "no logo" answer decides what is reported needs it
    to weigh more.
    """
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    no_logo = num_classes - 1
    brands_present = present[:no_logo].any()
    if no_logo_share is None or not present[no_logo] or not brands_present:
        return weights
    total = counts.sum()
    brand_mass = float((weights[:no_logo] * counts[:no_logo]).sum())
    weights[:no_logo] *= (1 - no_logo_share) * total / brand_mass
    weights[no_logo] = no_logo_share * total / counts[no_logo]
    return weights


def loss_share(labels: np.ndarray, weights: np.ndarray, label: int) -> float | None:
    """The share of a weighted loss that the samples of ``label`` carry (None if nothing weighs).

    Recorded from the weights a run actually trained with, so a setting that never reached the
    fit shows in the model's metrics rather than only, and faintly, in its scores.
    """
    total = float(np.sum(weights))
    if total <= 0:
        return None
    return round(float(np.sum(weights[np.asarray(labels) == label])) / total, 4)


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


def picture_chunks(
    pictures: Sequence[tuple[LabeledPhoto, Box | None]], *, max_pixels: int
) -> Iterator[list[Image]]:
    """The pictures (a photo, or a region of it) opened ``SCORING_CHUNK`` at a time."""
    for start in range(0, len(pictures), SCORING_CHUNK):
        images = []
        for photo, region in pictures[start : start + SCORING_CHUNK]:
            image = open_image(photo.path, max_pixels=max_pixels)
            images.append(image.crop(region) if region is not None else image)
        yield images


@dataclass
class PictureCount:
    """Pictures analysed so far in a stage that runs a detector over several sets of pictures.

    Each chunk analysed is a progress step, so a log shows the stage moving (calibration and the
    second look's candidates take a minute or more) rather than a silent gap.
    """

    report: Progress
    stage: str
    total: int
    message: str = ""
    done: int = 0

    def advance(self, count: int) -> None:
        self.done += count
        self.report(TrainingProgress(self.stage, self.done, self.total, message=self.message))


def analyse_pictures(
    detector: LogoDetector,
    pictures: Sequence[tuple[LabeledPhoto, Box | None]],
    *,
    max_pixels: int,
    count: PictureCount | None = None,
) -> list[PhotoCandidates]:
    """Every candidate the detector finds in each picture, opened a few pictures at a time."""
    found: list[PhotoCandidates] = []
    for images in picture_chunks(pictures, max_pixels=max_pixels):
        found.extend(detector.analyse(images))
        if count is not None:
            count.advance(len(images))
    return found
