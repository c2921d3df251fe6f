"""One training run of the one-pass detector (TensorFlow): views, fit, calibration.

The recipe (``monitor.inference.training.recipe`` describes where it sits):

1. Every photo is decoded once and kept in memory, shrunk to the most pixels a view needs.
2. Each epoch draws fresh views of every training photo (``monitor.inference.views``: scale
   jitter, zoomed-in crops, colour, blur, small turns), on a second thread, with their targets
   (``monitor.inference.heatmaps``). The frozen lower MobileNetV2 runs on them there too (on a
   CPU as a float32 LiteRT program, which runs it faster there than TensorFlow); its top blocks
   (10-16), the feature pyramid and the head are fitted with the focal, GIoU and brand
   cross-entropy losses (AdamW, cosine learning rate); of the second half's epochs, the one with
   the lowest validation loss on the validation photos' serving views is kept.
3. The second look (``monitor.inference.training.verifier_run``), when the data has logo-free
   regions: a window classifier fitted on the detector's own candidates.
4. Calibration on validation photos, as serving sees them: a Platt fit makes peak scores
   probabilities (ECE before and after is recorded); with a verifier, its temperature and a
   logistic fit combining the two scores follow. Then the threshold is chosen on the photos'
   best candidates and on logo-free regions of the same photos.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from PIL.Image import Image, Resampling

from monitor.domain import Box, Detection
from monitor.inference.calibration import (
    expected_calibration_error,
    fit_box_scale,
    fit_logistic,
    fit_platt,
    platt_scaled,
    threshold_report,
)
from monitor.inference.classifier import keras_predict_function
from monitor.inference.datasets import LabeledPhoto
from monitor.inference.detection import (
    MATCH_IOU,
    NESTED_SHARE,
    DetectorPredict,
    LogoDetector,
    PhotoCandidates,
    combined_candidates,
    hits_logo,
)
from monitor.inference.detector import (
    CLASS_OUTPUT,
    LOWER_OUTPUTS,
    OBJECTNESS_OUTPUT,
    build_detector_head,
    build_detector_model,
    build_feature_extractor,
    build_lower_features_model,
    split_feature_extractor,
)
from monitor.inference.heatmaps import make_targets
from monitor.inference.letterbox import letterbox
from monitor.inference.litert import float_program
from monitor.inference.model_dir import BACKBONE_NAME, BOX_OUTPUT, HEATMAP_OUTPUT, ModelMetadata
from monitor.inference.network import RANDOM_WEIGHTS
from monitor.inference.pasting import PastePlan, PatchBank, patch_bank
from monitor.inference.pixels import open_image
from monitor.inference.samples import render_all
from monitor.inference.training.data import (
    PictureCount,
    PreparedData,
    analyse_pictures,
    validation_negatives,
)
from monitor.inference.training.detector_losses import (
    box_giou_loss,
    brand_cross_entropy,
    heatmap_focal_loss,
)
from monitor.inference.training.options import Progress, TrainingProgress, TrainOptions
from monitor.inference.training.run import TrainingRun
from monitor.inference.verification import (
    IDENTITY_COMBINATION,
    LookedAgain,
    VerifierSettings,
    candidate_features,
    combined_probability,
    fit_brand_fusion,
    fused_brand_logits,
    with_fused_brand,
)
from monitor.inference.views import PhotoLogo, View, ViewPlan, augmented_view, serving_view
from monitor.inference.windows import iou, overlap_of_smaller

REPRESENTATIVE_PHOTOS = 64
REPORT_EVERY_STEPS = 5
UPPER_LEARNING_SHARE = 0.1
"""The fine-tuned backbone learns at this share of the head's rate (it starts trained)."""
WEIGHT_DECAY = 0.05
BOX_LOSS_WEIGHT = 2.0
VALIDATE_FROM = 0.5
"""Validation losses are measured from this share of the epochs on: under the cosine schedule
the loss falls until the last epochs, so a pass over the validation photos before then would only
cost time."""


@dataclass(frozen=True)
class TrainingPhoto:
    """A training photo kept in memory, shrunk to the largest size a view uses, and its logos."""

    image: Image
    boxes: tuple[PhotoLogo, ...]


LowerFeatures = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Pixel batches (0-255) to the frozen lower backbone's stride-8 and cut features."""


@dataclass
class Batch:
    """A batch of views: the frozen lower backbone's features of their pixels and the targets the
    losses compare the outputs with."""

    stride_8: np.ndarray
    cut: np.ndarray
    heatmap: np.ndarray
    heatmap_weight: np.ndarray
    box_target: np.ndarray
    box_weight: np.ndarray
    label_map: np.ndarray
    brand_weight: np.ndarray

    def tensors(self) -> list[Any]:
        return [
            tf.constant(array)
            for array in (
                self.stride_8,
                self.cut,
                self.heatmap,
                self.heatmap_weight,
                self.box_target,
                self.box_weight,
                self.label_map,
                self.brand_weight,
            )
        ]


LOSS_NAMES = ("heatmap_loss", "box_loss", "brand_loss")


@dataclass(frozen=True)
class EpochResult:
    """Mean losses (``LOSS_NAMES``) of one epoch on training and validation views."""

    train: tuple[float, ...]
    validation: tuple[float, ...] | None

    @property
    def validation_total(self) -> float | None:
        """The validation loss the kept epoch is chosen by, weighted as in training."""
        if self.validation is None:
            return None
        heatmap, box, brand = self.validation
        return heatmap + BOX_LOSS_WEIGHT * box + brand


class DetectorRun:
    """Holds the detector's networks and the photos in memory between the stages of one run."""

    def __init__(self, *, prepared: PreparedData, options: TrainOptions, report: Progress) -> None:
        self.prepared = prepared
        self.options = options
        self.report = report
        self.labels = prepared.dataset.labels
        self.size = options.detector_input_size
        self.serving_size = options.detector_serving_size or self.size
        self.extractor = build_feature_extractor(
            input_size=self.size, weights=options.backbone_weights
        )
        self.lower, self.upper = split_feature_extractor(self.extractor)
        self.head = build_detector_head(
            num_classes=len(self.labels), width=options.detector_head_width, seed=options.seed
        )
        self.epochs: list[EpochResult] = []
        self.best_epoch = 0
        self.verifier_run: TrainingRun | None = None
        self.verifier_settings: VerifierSettings | None = None
        self.box_scale = 1.0
        self.bank: PatchBank | None = None
        self._fitted_predict: DetectorPredict | None = None

    # --- fitting -----------------------------------------------------------------------------

    def fit(self) -> dict[str, float]:
        """Load the photos, fit the upper backbone and head; return the seconds each step took."""
        timings: dict[str, float] = {}
        clock = time.monotonic()
        train = self._load(self.prepared.train_photos, "train")
        validation_photos = [photo for photo in self.prepared.validation_photos if photo.has_logo]
        validation = self._load(validation_photos, "validation")
        lower = self._lower_features()
        validation_batches = [
            self._batch(
                [serving_view(photo.image, photo.boxes, self.size) for photo in chunk], lower
            )
            for chunk in _chunks(validation, self.options.detector_batch_size)
        ]
        self.bank = self._patch_bank(train)
        timings["loading"] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()
        self._fit(train, validation_batches, lower)
        timings["fitting"] = round(time.monotonic() - clock, 1)
        return timings

    def _load(self, photos: Sequence[LabeledPhoto], side: str) -> list[TrainingPhoto]:
        """Every photo decoded once and shrunk so no view needs more pixels than it keeps."""
        index = {label: number for number, label in enumerate(self.labels)}
        largest = self.size * ViewPlan().max_zoom
        loaded: list[TrainingPhoto] = []
        for number, photo in enumerate(photos, start=1):
            image = open_image(photo.path, max_pixels=self.options.max_image_pixels)
            shrink = min(1.0, largest / max(image.size))
            if shrink < 1.0:
                image = image.resize(
                    (max(1, round(image.size[0] * shrink)), max(1, round(image.size[1] * shrink))),
                    Resampling.BILINEAR,
                )
            boxes = tuple(
                PhotoLogo(
                    tuple(value * shrink for value in logo.box),  # type: ignore[arg-type]
                    index[logo.brand],
                    logo.extent_known,
                )
                for logo in photo.logo_boxes()
            )
            loaded.append(TrainingPhoto(image, boxes))
            if number % 50 == 0 or number == len(photos):
                self.report(
                    TrainingProgress("reading", number, len(photos), message=f"{side} photos")
                )
        return loaded

    def _patch_bank(self, train: Sequence[TrainingPhoto]) -> PatchBank | None:
        """The training logos and backgrounds pasted on views, when the options ask for pasting.

        Only photos with real boxes give logos: a photo standing whole for its logo (a folder per
        brand) pasted into another would teach that a picture in a picture is a logo.
        """
        if self.options.detector_paste_share <= 0:
            return None
        bank = patch_bank(
            [
                (loaded.image, loaded.boxes, photo.background_known)
                for loaded, photo in zip(train, self.prepared.train_photos, strict=True)
                if not photo.logo_place_unknown
            ]
        )
        return None if bank.empty else bank

    def _lower_features(self) -> LowerFeatures:
        """The frozen lower backbone as a function on pixel batches, run once per view.

        On a CPU as a float32 LiteRT program (``_device_function``): this pass is a large share of
        each training step.
        """
        run = _device_function(
            build_lower_features_model(lower=self.lower, input_size=self.size),
            self.size,
            alone=False,
        )

        def features(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            outputs = run(batch)
            stride_8, cut = (outputs[name] for name in LOWER_OUTPUTS)
            return stride_8, cut

        return features

    def _batch(self, views: Sequence[View], lower: LowerFeatures) -> Batch:
        targets = [
            make_targets(view.boxes, ignored=view.ignored, input_size=self.size) for view in views
        ]
        stride_8, cut = lower(np.stack([view.pixels for view in views]))
        return Batch(
            stride_8=stride_8,
            cut=cut,
            heatmap=np.stack([target.objectness[..., np.newaxis] for target in targets]),
            heatmap_weight=np.stack([target.heatmap_weight for target in targets]),
            box_target=np.stack([target.box_target for target in targets]),
            box_weight=np.stack([target.box_weight for target in targets]),
            label_map=np.stack([target.label_map for target in targets]),
            brand_weight=np.stack([target.brand_weight for target in targets]),
        )

    def _epoch_batches(
        self, photos: Sequence[TrainingPhoto], rng: np.random.Generator, lower: LowerFeatures
    ) -> Iterator[Batch]:
        """One epoch of fresh views, every photo once in a random order, drawn a batch ahead.

        Views are drawn, and the frozen lower backbone run on them, on a second thread while
        TensorFlow trains on the batch before, so the cores spend no time waiting for Pillow.
        """
        order = rng.permutation(len(photos))
        size = self.options.detector_batch_size
        chunks = [order[start : start + size] for start in range(0, len(order) - size + 1, size)]
        seeds = rng.integers(0, 2**31, size=len(chunks))
        paste_plan = PastePlan(share=self.options.detector_paste_share) if self.bank else None

        def draw(chunk: np.ndarray, seed: int) -> Batch:
            view_rng = np.random.default_rng(seed)
            return self._batch(
                [
                    augmented_view(
                        photos[index].image,
                        photos[index].boxes,
                        self.size,
                        rng=view_rng,
                        bank=self.bank,
                        paste_plan=paste_plan,
                    )
                    for index in chunk
                ],
                lower,
            )

        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(draw, chunks[0], int(seeds[0])) if chunks else None
            for number in range(len(chunks)):
                assert pending is not None
                batch = pending.result()
                if number + 1 < len(chunks):
                    pending = pool.submit(draw, chunks[number + 1], int(seeds[number + 1]))
                yield batch

    def _fit(
        self, train: Sequence[TrainingPhoto], validation: Sequence[Batch], lower: LowerFeatures
    ) -> None:
        """Fit the upper backbone and head; keep the validated epoch with the lowest loss."""
        options = self.options
        steps_per_epoch = max(1, len(train) // options.detector_batch_size)
        total_steps = steps_per_epoch * options.detector_epochs
        head_optimizer = _optimizer(options.detector_learning_rate, total_steps)
        upper_optimizer = _optimizer(
            options.detector_learning_rate * UPPER_LEARNING_SHARE, total_steps
        )
        train_step = _train_step_function(self.upper, self.head, head_optimizer, upper_optimizer)
        evaluate = _loss_function(self.upper, self.head)
        rng = np.random.default_rng([options.seed, 23])
        first_validated = math.ceil(options.detector_epochs * VALIDATE_FROM)
        best_weights = self._weights()
        best_value = np.inf
        for epoch in range(1, options.detector_epochs + 1):
            sums = np.zeros(len(LOSS_NAMES))
            for step, batch in enumerate(self._epoch_batches(train, rng, lower), start=1):
                losses = train_step(*batch.tensors())
                sums += [float(value) for value in losses]
                if step % REPORT_EVERY_STEPS == 0 or step == steps_per_epoch:
                    self.report(
                        TrainingProgress(
                            "fitting",
                            step,
                            steps_per_epoch,
                            epoch=epoch,
                            epochs=options.detector_epochs,
                            metrics=dict(zip(LOSS_NAMES, (sums / step).tolist(), strict=True)),
                        )
                    )
            result = _epoch_result(
                sums / steps_per_epoch, evaluate, validation if epoch >= first_validated else ()
            )
            self.epochs.append(result)
            value = result.validation_total
            if value is None or value < best_value:
                best_value = np.inf if value is None else value
                best_weights = self._weights()
                self.best_epoch = epoch
            self.report(
                TrainingProgress(
                    "fitting",
                    steps_per_epoch,
                    steps_per_epoch,
                    epoch=epoch,
                    epochs=options.detector_epochs,
                    metrics=_epoch_metrics(result),
                )
            )
        self._set_weights(best_weights)

    def _weights(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return self.upper.get_weights(), self.head.get_weights()

    def _set_weights(self, weights: tuple[list[np.ndarray], list[np.ndarray]]) -> None:
        self.upper.set_weights(weights[0])
        self.head.set_weights(weights[1])

    # --- calibration -------------------------------------------------------------------------

    def fit_box_scale(self) -> dict[str, Any]:
        """Fit the factor on box sides on validation logos; every later stage reads scaled boxes.

        Each annotated logo is paired with the detector's most probable candidate on it (half of
        the smaller box shared), the candidate that would name it. Fitted before the second look
        is trained, so that the verifier learns on the windows serving will cut.
        """
        logo_photos = [
            photo
            for photo in self.prepared.validation_photos
            if photo.has_logo and not photo.logo_place_unknown
        ]
        count = PictureCount(self.report, "box scale", len(logo_photos), "validation logos")
        raw = self.detector(calibration=(1.0, 0.0), threshold=0.0)
        found = analyse_pictures(
            raw,
            [(photo, None) for photo in logo_photos],
            max_pixels=self.options.max_image_pixels,
            count=count,
        )
        pairs = []
        for photo, candidates in zip(logo_photos, found, strict=True):
            for logo in photo.boxes:
                on_logo = [
                    detection.box
                    for detection in candidates.detections
                    if detection.box is not None
                    and overlap_of_smaller(detection.box, logo.box) >= NESTED_SHARE
                ]
                if on_logo:
                    pairs.append((on_logo[0], logo.box, photo.size))
        choice = fit_box_scale(pairs)
        self.box_scale = choice.scale
        return asdict(choice)

    def fit_verifier(self) -> dict[str, Any]:
        """Fit the second-look window classifier on the fitted detector's candidates."""
        from monitor.inference.training.verifier_run import settings_from, train_verifier

        self.verifier_run, summary = train_verifier(
            prepared=self.prepared,
            options=self.options,
            detector=self.detector(calibration=(1.0, 0.0), threshold=0.0),
            report=self.report,
        )
        self.verifier_settings = settings_from(self.options)
        return summary

    def calibrate(self) -> dict[str, Any]:
        """Platt-scale peak scores and choose the threshold, on validation pictures only.

        With a verifier, its temperature is fitted on validation windows, then a logistic fit on
        validation candidates combines the detector's calibrated score with the classifier's
        logo probability, and the threshold applies to that.
        """
        logo_photos = [photo for photo in self.prepared.validation_photos if photo.has_logo]
        negatives = validation_negatives(self.prepared.validation_photos, seed=self.options.seed)
        passes = 1 if self.verifier_run is None else 2  # the raw detector, then the second look
        count = PictureCount(
            self.report, "calibrating", passes * (len(logo_photos) + len(negatives)), "detector"
        )
        raw = self.detector(calibration=(1.0, 0.0), threshold=0.0)
        logo_found = _detect(raw, [(photo, None) for photo in logo_photos], self.options, count)
        negative_found = _detect(raw, negatives, self.options, count)
        scores, correct = _candidate_outcomes(logo_photos, logo_found, negative_found)
        calibration = fit_platt(scores, correct) if len(scores) else (1.0, 0.0)
        result: dict[str, Any] = {
            "score_calibration": list(calibration),
            "validation_candidates": len(scores),
            "ece_before": _ece(scores, correct),
            "ece_after": _ece(platt_scaled(scores, calibration), correct),
        }
        if not self.prepared.knows_no_logo:
            result["threshold"] = {"value": 0.0, "note": "no logo-free pictures"}
            return result
        logo_scores, logo_right = _best_answers(logo_photos, logo_found, calibration)
        negative_scores = _best_scores(negative_found, calibration)
        if self.verifier_run is not None:
            count.message = "second look"
            logo_scores, logo_right, negative_scores = self._calibrate_verifier(
                calibration, logo_photos, negatives, result, count
            )
        result["threshold"] = threshold_report(
            logo_scores=logo_scores,
            logo_correct=logo_right,
            no_logo_scores=negative_scores,
            max_false_positive_rate=self.options.max_false_positive_rate,
            confidence=self.options.false_positive_confidence,
        )
        return result

    def _calibrate_verifier(
        self,
        calibration: tuple[float, float],
        logo_photos: Sequence[LabeledPhoto],
        negatives: Sequence[tuple[LabeledPhoto, Box | None]],
        result: dict[str, Any],
        count: PictureCount,
    ) -> tuple[list[float], list[bool], list[float]]:
        """Temperature and combination of the verifier; the best answers they give on validation."""
        assert self.verifier_run is not None and self.verifier_settings is not None
        temperature = self.verifier_run.temperature_calibration()
        settings = replace(self.verifier_settings, temperature=temperature["temperature"])
        detector = self.detector(calibration=calibration, threshold=0.0, verifier=settings)
        max_pixels = self.options.max_image_pixels
        logo_looked = analyse_pictures(
            detector, [(photo, None) for photo in logo_photos], max_pixels=max_pixels, count=count
        )
        negative_looked = analyse_pictures(detector, negatives, max_pixels=max_pixels, count=count)
        if self.options.verifier_fuse_brands:
            fusion = _fit_brand_fusion(logo_photos, logo_looked, self.labels)
            result["brand_fusion"] = fusion
            settings = replace(settings, brand_fusion=fusion["weight"])
            logo_looked = [_fused(found, self.labels, settings) for found in logo_looked]
            negative_looked = [_fused(found, self.labels, settings) for found in negative_looked]
        features, correct = _looked_again_outcomes(logo_photos, logo_looked, negative_looked)
        combination = fit_logistic(features, correct, prior=IDENTITY_COMBINATION)
        self.verifier_settings = replace(settings, combination=combination)  # type: ignore[arg-type]
        fitted = self.verifier_settings
        nms_iou = self.options.inference.nms_iou

        def detections(found: PhotoCandidates) -> list[Detection]:
            return combined_candidates(found.looked_again, fitted, nms_iou=nms_iou).detections

        logo_found = [detections(found) for found in logo_looked]
        negative_found = [detections(found) for found in negative_looked]
        scores = combined_probability(features, combination)
        result["verifier"] = {
            **temperature,
            "combination": [round(value, 4) for value in combination],
            "validation_candidates": len(correct),
            "ece_combined": _ece(scores, np.asarray(correct, dtype=bool)),
        }
        logo_scores, logo_right = _best_answers(logo_photos, logo_found, (1.0, 0.0))
        return logo_scores, logo_right, _best_scores(negative_found, (1.0, 0.0))

    # --- results -----------------------------------------------------------------------------

    def representative_pixels(self) -> list[np.ndarray]:
        """Photos as serving gives them to the model, for the int8 export to measure ranges on.

        Validation photos first (and training photos when there are few), at most
        ``REPRESENTATIVE_PHOTOS``.
        """
        photos = [*self.prepared.validation_photos, *self.prepared.train_photos]
        pixels = []
        for photo in photos[:REPRESENTATIVE_PHOTOS]:
            image = open_image(photo.path, max_pixels=self.options.max_image_pixels)
            pixels.append(letterbox(image, self.serving_size))
        return pixels

    def verifier_representative_pixels(self) -> list[np.ndarray]:
        """Validation windows cut as serving cuts them, for the verifier's int8 export."""
        assert self.verifier_run is not None
        data = self.verifier_run.prepared
        specs = data.validation_specs or data.train_specs
        photos = data.validation_photos if data.validation_specs else data.train_photos
        chosen = [
            specs[index]
            for index in np.linspace(0, len(specs) - 1, REPRESENTATIVE_PHOTOS, dtype=int)
        ]
        size = self.verifier_run.options.image_size
        return list(render_all(photos, chosen, size, max_pixels=self.options.max_image_pixels))

    def final_model(self) -> keras.Model:
        """The model to save: letterboxed pixels in, heatmap and box maps out, at the serving size.

        Serving at another size than training rebuilds the backbone for that input and copies the
        fitted weights into it (the networks are convolutional: the same weights fit any size).
        """
        extractor = self.extractor
        if self.serving_size != self.size:
            extractor = build_feature_extractor(
                input_size=self.serving_size, weights=RANDOM_WEIGHTS
            )
            extractor.set_weights(self.extractor.get_weights())
        return build_detector_model(
            extractor=extractor, head=self.head, input_size=self.serving_size
        )

    def metadata(
        self, *, version: str, calibration: tuple[float, float], threshold: float
    ) -> ModelMetadata:
        """The metadata of this run's detector with the given calibration and threshold."""
        return ModelMetadata(
            version=version,
            labels=self.labels,
            input_size=self.serving_size,
            no_logo_threshold=threshold,
            temperature=1.0,
            backbone=BACKBONE_NAME,
            backbone_weights=self.options.backbone_weights,
            created_at="",
            training_seconds=0.0,
            inference=self.options.inference,
            knows_no_logo=self.prepared.knows_no_logo,
            architecture="detector",
            score_calibration=calibration,
            verifier=self.verifier_settings if self.verifier_run is not None else None,
            box_scale=self.box_scale,
        )

    def detector(
        self,
        *,
        calibration: tuple[float, float],
        threshold: float,
        verifier: VerifierSettings | None = None,
    ) -> LogoDetector:
        """A detector on the in-memory models, to score validation photos before saving."""
        metadata = replace(
            self.metadata(version="validation", calibration=calibration, threshold=threshold),
            verifier=verifier,
        )
        verify = None
        if verifier is not None:
            assert self.verifier_run is not None
            verify = keras_predict_function(self.verifier_run.final_model(), verifier.input_size)
        return LogoDetector(
            metadata=metadata,
            predict=self._fitted_detector_predict(),
            verify=verify,
        )

    def _fitted_detector_predict(self) -> DetectorPredict:
        """The fitted detector on letterboxed batches, made once: its weights no longer change.

        On a CPU as a float32 LiteRT program (``_device_function``): the box scale, the second
        look's candidates and the calibration run it over thousands of pictures.
        """
        if self._fitted_predict is None:
            run = _device_function(self.final_model(), self.serving_size, alone=True)

            def predict(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                outputs = run(batch)
                return outputs[HEATMAP_OUTPUT], outputs[BOX_OUTPUT]

            self._fitted_predict = predict
        return self._fitted_predict

    def curves(self) -> dict[str, list[float]]:
        """Per-epoch losses for the training-curve picture."""
        curves: dict[str, list[float]] = {}
        for index, name in enumerate(LOSS_NAMES):
            label = name.replace("_", " ")
            curves[f"train {label}"] = [epoch.train[index] for epoch in self.epochs]
            if any(epoch.validation is not None for epoch in self.epochs):
                curves[f"validation {label}"] = [
                    math.nan if epoch.validation is None else epoch.validation[index]
                    for epoch in self.epochs
                ]
        return curves

    def stage_summaries(self) -> dict[str, Any]:
        """The head stage: epochs run, the kept epoch and its validation losses."""
        kept = self.epochs[self.best_epoch - 1] if self.best_epoch else None
        return {
            "detector_head": {
                "epochs": len(self.epochs),
                "best_epoch": self.best_epoch,
                "pasted_logo_bank": (
                    0 if self.bank is None else sum(len(brand) for brand in self.bank.logos)
                ),
                "kept_validation_losses": (
                    dict(
                        zip(LOSS_NAMES, [round(value, 4) for value in kept.validation], strict=True)
                    )
                    if kept is not None and kept.validation is not None
                    else None
                ),
            }
        }


def _device_function(
    model: keras.Model, size: int, *, alone: bool
) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """A frozen ``model`` (named outputs) on batches of ``size`` squares, where it runs fastest.

    On a CPU a float32 LiteRT program: the same numbers as TensorFlow's to rounding, in less time
    (``bench/lower_backbone.py``). It runs on every core when it runs ``alone``, on one beside
    TensorFlow's training step otherwise; the thread count does not change its numbers. On a GPU,
    TensorFlow's own.
    """
    if not tf.config.list_physical_devices("GPU"):
        threads = os.cpu_count() if alone else 1
        return float_program(model, input_shape=(size, size, 3), threads=threads)
    run = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)

    def on_gpu(batch: np.ndarray) -> dict[str, np.ndarray]:
        outputs = run(tf.constant(batch, dtype=tf.float32))
        return {name: np.asarray(value) for name, value in outputs.items()}

    return on_gpu


def _chunks(items: Sequence[TrainingPhoto], size: int) -> Iterator[Sequence[TrainingPhoto]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _optimizer(learning_rate: float, total_steps: int) -> keras.optimizers.Optimizer:
    """AdamW with a short warm-up and a cosine decay over the whole run."""
    warmup = min(total_steps // 10, 200)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate * 0.1,
        decay_steps=max(1, total_steps - warmup),
        warmup_target=learning_rate,
        warmup_steps=warmup,
    )
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=WEIGHT_DECAY)


def _losses(
    upper: keras.Model, head: keras.Model, arrays: Sequence[Any], training: bool
) -> tuple[Any, Any, Any]:
    stride_8, cut, objectness, heatmap_weight, box_target, box_weight, label_map, brand_weight = (
        arrays
    )
    # batch norm keeps its ImageNet statistics (training=False) while the weights are fine-tuned
    stride_16, stride_32 = upper(cut, training=False)
    outputs = head([stride_8, stride_16, stride_32], training=training)
    heat_loss = heatmap_focal_loss(objectness, outputs[OBJECTNESS_OUTPUT], heatmap_weight)
    box_loss = box_giou_loss(box_target, outputs[BOX_OUTPUT], box_weight)
    brand_loss = brand_cross_entropy(label_map, outputs[CLASS_OUTPUT], brand_weight)
    return heat_loss, box_loss, brand_loss


def _train_step_function(
    upper: keras.Model,
    head: keras.Model,
    head_optimizer: keras.optimizers.Optimizer,
    upper_optimizer: keras.optimizers.Optimizer,
) -> Any:
    head_variables = head.trainable_variables
    upper_variables = upper.trainable_variables

    @tf.function(reduce_retracing=True)
    def step(*arrays: Any) -> Any:
        with tf.GradientTape() as tape:
            heat_loss, box_loss, brand_loss = _losses(upper, head, arrays, True)
            loss = heat_loss + BOX_LOSS_WEIGHT * box_loss + brand_loss
        gradients = tape.gradient(loss, [*head_variables, *upper_variables])
        head_optimizer.apply_gradients(
            zip(gradients[: len(head_variables)], head_variables, strict=True)
        )
        upper_optimizer.apply_gradients(
            zip(gradients[len(head_variables) :], upper_variables, strict=True)
        )
        return heat_loss, box_loss, brand_loss

    return step


def _loss_function(upper: keras.Model, head: keras.Model) -> Any:
    @tf.function(reduce_retracing=True)
    def losses(*arrays: Any) -> Any:
        return _losses(upper, head, arrays, False)

    return losses


def _epoch_result(
    train_means: np.ndarray, evaluate: Any, validation: Sequence[Batch]
) -> EpochResult:
    train = tuple(float(value) for value in train_means)
    if not validation:
        return EpochResult(train, None)
    sums = np.zeros(len(LOSS_NAMES))
    for batch in validation:
        sums += [float(value) for value in evaluate(*batch.tensors())]
    return EpochResult(train, tuple(float(value) for value in sums / len(validation)))


def _epoch_metrics(result: EpochResult) -> dict[str, float]:
    metrics = dict(zip(LOSS_NAMES, result.train, strict=True))
    if result.validation is not None:
        metrics.update(
            {
                f"val_{name}": value
                for name, value in zip(LOSS_NAMES, result.validation, strict=True)
            }
        )
    return metrics


def _detect(
    detector: LogoDetector,
    pictures: Sequence[tuple[LabeledPhoto, Box | None]],
    options: TrainOptions,
    count: PictureCount,
) -> list[list[Detection]]:
    """The detections of each picture (a photo or a region of it) at the detector's threshold."""
    analysed = analyse_pictures(
        detector, pictures, max_pixels=options.max_image_pixels, count=count
    )
    return [detector.detections(candidates) for candidates in analysed]


def _looked_again_outcomes(
    logo_photos: Sequence[LabeledPhoto],
    logo_found: Sequence[PhotoCandidates],
    negative_found: Sequence[PhotoCandidates],
) -> tuple[np.ndarray, np.ndarray]:
    """The combination's features of every verified validation candidate, and whether its brand
    and box are right."""
    looked: list[LookedAgain] = []
    correct: list[bool] = []
    for photo, found in zip(logo_photos, logo_found, strict=True):
        logos = [(logo.brand, logo.box) for logo in photo.logo_boxes()]
        looked.extend(found.looked_again)
        correct.extend(
            hits_logo(Detection(item.brand, 0.0, item.box), logos) for item in found.looked_again
        )
    for found in negative_found:
        looked.extend(found.looked_again)
        correct.extend(False for _ in found.looked_again)
    return candidate_features(looked), np.array(correct, dtype=bool)


def _fit_brand_fusion(
    logo_photos: Sequence[LabeledPhoto],
    logo_found: Sequence[PhotoCandidates],
    labels: Sequence[str],
) -> dict[str, Any]:
    """The detector's weight in naming brands, fitted on validation candidates on a logo.

    A candidate is on a logo when its box overlaps it by IoU >= 0.5, whatever brand either
    network named; its label is that logo's brand. Also reports how many of them each way names
    right.
    """
    classifier: list[tuple[float, ...]] = []
    detector: list[tuple[float, ...]] = []
    truth: list[int] = []
    for photo, found in zip(logo_photos, logo_found, strict=True):
        logos = photo.logo_boxes()
        for item in found.looked_again:
            on = [logo for logo in logos if iou(item.box, logo.box) >= MATCH_IOU]
            if on and item.classifier_brands and item.detector_brands:
                classifier.append(item.classifier_brands)
                detector.append(item.detector_brands)
                truth.append(labels.index(on[0].brand))
    arrays = (np.array(classifier), np.array(detector), np.array(truth))
    weight = fit_brand_fusion(*arrays)
    right = {
        name: _named_right_share(*arrays, weight=value)
        for name, value in (("classifier_alone", 0.0), ("fused", weight))
        if truth
    }
    return {"weight": weight, "candidates_on_logos": len(truth), "brand_right": right}


def _named_right_share(
    classifier: np.ndarray, detector: np.ndarray, truth: np.ndarray, *, weight: float
) -> float:
    """The share of candidates whose brand fused at ``weight`` is their logo's."""
    named = fused_brand_logits(classifier, detector, weight).argmax(axis=1)
    return round(float(np.mean(named == truth)), 4)


def _fused(
    found: PhotoCandidates, labels: Sequence[str], settings: VerifierSettings
) -> PhotoCandidates:
    """``found`` with each looked-again candidate naming its fused brand."""
    return replace(
        found,
        looked_again=tuple(
            with_fused_brand(item, labels, settings.brand_fusion) for item in found.looked_again
        ),
    )


def _candidate_outcomes(
    logo_photos: Sequence[LabeledPhoto],
    logo_found: Sequence[Sequence[Detection]],
    negative_found: Sequence[Sequence[Detection]],
) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores of all validation candidates and whether each is a right detection."""
    scores: list[float] = []
    correct: list[bool] = []
    for photo, found in zip(logo_photos, logo_found, strict=True):
        logos = [(logo.brand, logo.box) for logo in photo.logo_boxes()]
        for detection in found:
            scores.append(detection.probability)
            correct.append(hits_logo(detection, logos))
    for found in negative_found:
        scores.extend(detection.probability for detection in found)
        correct.extend(False for _ in found)
    return np.array(scores), np.array(correct, dtype=bool)


def _best_answers(
    logo_photos: Sequence[LabeledPhoto],
    logo_found: Sequence[Sequence[Detection]],
    calibration: tuple[float, float],
) -> tuple[list[float], list[bool]]:
    """Each validation logo photo's best candidate: calibrated score, and whether its brand is right."""
    right = [
        bool(found) and found[0].brand in photo.brands
        for photo, found in zip(logo_photos, logo_found, strict=True)
    ]
    return _best_scores(logo_found, calibration), right


def _best_scores(
    found_per_picture: Sequence[Sequence[Detection]], calibration: tuple[float, float]
) -> list[float]:
    """The calibrated score of each picture's best raw candidate (0 for a picture with none)."""
    raw = np.array([found[0].probability if found else 0.0 for found in found_per_picture])
    calibrated = platt_scaled(raw, calibration)
    return [
        float(score) if found else 0.0
        for score, found in zip(calibrated, found_per_picture, strict=True)
    ]


def _ece(scores: np.ndarray, correct: np.ndarray) -> float | None:
    if len(scores) == 0:
        return None
    return round(expected_calibration_error(scores, correct), 4)
