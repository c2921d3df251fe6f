"""Training the detector's second look: a window classifier on the detector's own candidates.

After the detector is fitted it runs over every training photo and over logo-free regions of
them, as serving would. Its best candidates become the classifier's samples, cut by the same
``verification_window`` serving uses:

- a candidate on a logo (IoU >= 0.5) is a sample of that logo's brand, whatever brand the
  detector said: the classifier learns to correct it;
- a candidate away from every logo is a "no logo" sample: the detector's own false alarms are
  the hard negatives, mined by the detector rather than by hand;
- candidates between the two are left out (neither answer is right for them);
- each logo also gives a few windows around a jittered copy of its box, so the classifier sees
  its brands even where the detector (fitted on these photos) boxes them too well;
- a few random logo-free regions of each photo are "no logo" samples too.

The window classifier is then trained as the window model is (``TrainingRun``: cached lower
features, head, fine-tuning from block 9), at the verifier's input size, and its temperature
fitted on validation windows cut the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from monitor.domain import Box
from monitor.inference.datasets import LabeledPhoto, background_regions, held_out_negatives
from monitor.inference.detection import LogoDetector
from monitor.inference.samples import (
    NO_BOX,
    SampleSpec,
    SamplingPlan,
    box_fractions,
    random_augmentation,
)
from monitor.inference.training.data import (
    PictureCount,
    PreparedData,
    analyse_pictures,
    validation_negatives,
)
from monitor.inference.training.options import Progress, TrainingProgress, TrainOptions
from monitor.inference.training.run import TrainingRun
from monitor.inference.verification import VerifierSettings, verification_window
from monitor.inference.windows import box_area, intersection_area, iou

EXTRA_CANDIDATES = 2
"""Training looks at this many more of a photo's candidates than serving does."""
BACKGROUND_REGIONS_PER_PHOTO = 2
"""Logo-free regions of each training photo the detector is run on, for its false alarms."""
BACKGROUNDS_PER_PHOTO = 2
"""Random logo-free windows of each photo, "no logo" samples wherever the detector looks."""
VERIFIER_WARMUP_EPOCHS = 1.0
"""The verifier fine-tunes at 3x the window model's rate, so its rate rises over the first epoch."""
POSITIVE_IOU = 0.5
NEGATIVE_IOU = 0.1
MOSTLY_INSIDE = 0.5
"""A candidate window holding half of a logo's box is not a "no logo" sample."""


@dataclass(frozen=True)
class Located:
    """A detector candidate located in its photo: the box, and the picture it was found in."""

    box: Box
    picture: Box


def settings_from(options: TrainOptions) -> VerifierSettings:
    """The verifier settings the training options ask for (before temperature and combination)."""
    return VerifierSettings(
        input_size=options.verifier_input_size,
        context=options.verifier_context,
        candidates=options.verifier_candidates,
    )


def window_options(options: TrainOptions) -> TrainOptions:
    """The window classifier's training options for the second look the ``options`` ask for."""
    return replace(
        options,
        architecture="windows",
        image_size=options.verifier_input_size,
        hard_negatives=0,
        epochs_head=options.verifier_epochs_head,
        epochs_finetune=options.verifier_epochs_finetune,
        finetune_from_block=options.verifier_finetune_from_block,
        finetune_learning_rate=options.verifier_learning_rate,
        finetune_warmup_epochs=VERIFIER_WARMUP_EPOCHS,
        no_logo_weight_share=options.verifier_no_logo_share,
    )


def train_verifier(
    *,
    prepared: PreparedData,
    options: TrainOptions,
    detector: LogoDetector,
    report: Progress,
) -> tuple[TrainingRun, dict[str, Any]]:
    """Fit the window classifier on the fitted ``detector``'s candidates; (run, summary).

    ``detector`` has no verifier and gives every candidate (threshold 0).
    """
    settings = settings_from(options)
    rng = np.random.default_rng([options.seed, 11])
    train_pictures = _train_pictures(prepared.train_photos, seed=options.seed)
    validation_pictures = _validation_pictures(prepared.validation_photos, seed=options.seed)
    count = PictureCount(
        report, "verifier", len(train_pictures) + len(validation_pictures), "detector candidates"
    )
    train_specs = _side_specs(
        prepared.train_photos,
        train_pictures,
        detector=detector,
        options=options,
        settings=settings,
        jitters=options.verifier_jitters,
        rng=rng,
        augment=True,
        count=count,
    )
    validation_specs = _side_specs(
        prepared.validation_photos,
        validation_pictures,
        detector=detector,
        options=options,
        settings=settings,
        jitters=1,
        rng=rng,
        augment=False,
        count=count,
    )
    report(
        TrainingProgress(
            "verifier", count.total, count.total, message=f"{len(train_specs)} windows"
        )
    )
    run = TrainingRun(
        prepared=replace(prepared, train_specs=train_specs, validation_specs=validation_specs),
        options=window_options(options),
        report=lambda step: report(replace(step, stage=f"verifier {step.stage}")),
    )
    timings = run.fit()
    no_logo = len(prepared.dataset.labels)
    summary = {
        "train_windows": len(train_specs),
        "train_no_logo_windows": sum(spec.label == no_logo for spec in train_specs),
        "train_no_logo_loss_share": run.no_logo_loss_share,
        "validation_windows": len(validation_specs),
        "stages": run.stage_summaries(),
        "timings_seconds": timings,
    }
    return run, summary


def _train_pictures(
    photos: Sequence[LabeledPhoto], *, seed: int
) -> list[tuple[LabeledPhoto, Box | None]]:
    """Every training photo whole, then logo-free regions of them (where false alarms hide)."""
    regions = held_out_negatives(
        photos, count=BACKGROUND_REGIONS_PER_PHOTO * len(photos), seed=seed + 1
    )
    return [(photo, None) for photo in photos] + list(regions)


def _validation_pictures(
    photos: Sequence[LabeledPhoto], *, seed: int
) -> list[tuple[LabeledPhoto, Box | None]]:
    """Validation logo photos whole and the logo-free pictures the threshold is chosen on."""
    logo_photos: list[tuple[LabeledPhoto, Box | None]] = [
        (photo, None) for photo in photos if photo.has_logo
    ]
    return logo_photos + list(validation_negatives(photos, seed=seed))


def _side_specs(
    photos: Sequence[LabeledPhoto],
    pictures: Sequence[tuple[LabeledPhoto, Box | None]],
    *,
    detector: LogoDetector,
    options: TrainOptions,
    settings: VerifierSettings,
    jitters: int,
    rng: np.random.Generator,
    augment: bool,
    count: PictureCount,
) -> list[SampleSpec]:
    """The windows of one side: candidates of every picture and jittered windows of each logo."""
    index_of = {id(photo): index for index, photo in enumerate(photos)}
    label_of = {label: index for index, label in enumerate(detector.labels)}
    no_logo = len(detector.labels)
    plan = SamplingPlan(augment=augment)
    specs: list[SampleSpec] = []
    found = _candidates(detector, pictures, options, settings.candidates + EXTRA_CANDIDATES, count)
    for (photo, _), located in zip(pictures, found, strict=True):
        for candidate in located:
            spec = _candidate_spec(
                index_of[id(photo)], photo, candidate, settings, label_of, no_logo
            )
            if spec is not None:
                specs.append(replace(spec, augmentation=random_augmentation(rng, plan)))
    for photo_index, photo in enumerate(photos):
        if photo.background_known:
            specs.extend(
                SampleSpec(
                    photo_index, region, no_logo, NO_BOX, False, random_augmentation(rng, plan)
                )
                for region in background_regions(photo, count=BACKGROUNDS_PER_PHOTO, rng=rng)
            )
        for logo in photo.logo_boxes():
            for _ in range(jitters):
                window = _jittered_window(logo.box, photo.size, settings, rng, jitter=augment)
                specs.append(
                    SampleSpec(
                        photo_index,
                        window,
                        label_of[logo.brand],
                        box_fractions(logo.box, window),
                        True,
                        random_augmentation(rng, plan),
                    )
                )
    # photo by photo, so rendering opens each photo once
    return sorted(specs, key=lambda spec: spec.photo_index)


def _candidates(
    detector: LogoDetector,
    pictures: Sequence[tuple[LabeledPhoto, Box | None]],
    options: TrainOptions,
    limit: int,
    count: PictureCount,
) -> list[list[Located]]:
    """The detector's best ``limit`` candidates of each picture, in photo pixels."""
    analysed = analyse_pictures(
        detector, pictures, max_pixels=options.max_image_pixels, count=count
    )
    found = [detector.detections(candidates, threshold=0.0) for candidates in analysed]
    located: list[list[Located]] = []
    for (photo, region), detections in zip(pictures, found, strict=True):
        picture = region if region is not None else (0, 0, *photo.size)
        left, top = picture[0], picture[1]
        located.append(
            [
                Located(
                    box=(
                        detection.box[0] + left,
                        detection.box[1] + top,
                        detection.box[2] + left,
                        detection.box[3] + top,
                    ),
                    picture=picture,
                )
                for detection in detections[:limit]
                if detection.box is not None
            ]
        )
    return located


def _candidate_spec(
    photo_index: int,
    photo: LabeledPhoto,
    candidate: Located,
    settings: VerifierSettings,
    label_of: dict[str, int],
    no_logo: int,
) -> SampleSpec | None:
    """A candidate's window as a sample: the logo it sits on, "no logo", or None when unclear."""
    window = _window_in_picture(candidate, settings)
    logos = photo.logo_boxes()
    overlaps = [iou(candidate.box, logo.box) for logo in logos]
    best = int(np.argmax(overlaps)) if overlaps else -1
    if best >= 0 and overlaps[best] >= POSITIVE_IOU:
        logo = logos[best]
        return SampleSpec(
            photo_index, window, label_of[logo.brand], box_fractions(logo.box, window), True
        )
    if not photo.background_known:
        return None  # away from the boxes, but it may be a logo nobody boxed
    if any(_inside_share(logo.box, window) >= MOSTLY_INSIDE for logo in logos):
        return None
    if best >= 0 and overlaps[best] >= NEGATIVE_IOU:
        return None
    return SampleSpec(photo_index, window, no_logo, NO_BOX, False)


def _window_in_picture(candidate: Located, settings: VerifierSettings) -> Box:
    """The serving window of a candidate, inside the picture (photo or region) it was found in."""
    left, top, right, bottom = candidate.picture
    box = candidate.box
    local = verification_window(
        (box[0] - left, box[1] - top, box[2] - left, box[3] - top),
        (right - left, bottom - top),
        context=settings.context,
        min_side=settings.min_side,
    )
    return (local[0] + left, local[1] + top, local[2] + left, local[3] + top)


def _jittered_window(
    box: Box,
    photo_size: tuple[int, int],
    settings: VerifierSettings,
    rng: np.random.Generator,
    *,
    jitter: bool,
) -> Box:
    """The serving window of ``box`` moved and scaled a little, as a detector's box would be."""
    if not jitter:
        return verification_window(
            box, photo_size, context=settings.context, min_side=settings.min_side
        )
    left, top, right, bottom = box
    width, height = max(1, right - left), max(1, bottom - top)
    centre_x = (left + right) / 2 + rng.normal(0, 0.1) * width
    centre_y = (top + bottom) / 2 + rng.normal(0, 0.1) * height
    scale = float(np.exp(rng.normal(0, 0.15)))
    half_width, half_height = width * scale / 2, height * scale / 2
    moved = (
        round(centre_x - half_width),
        round(centre_y - half_height),
        round(centre_x + half_width),
        round(centre_y + half_height),
    )
    context = settings.context * float(np.exp(rng.uniform(-0.15, 0.25)))
    return verification_window(moved, photo_size, context=context, min_side=settings.min_side)


def _inside_share(box: Box, window: Box) -> float:
    """The share of ``box``'s area inside ``window``."""
    return intersection_area(box, window) / max(1, box_area(box))
