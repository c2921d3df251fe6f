"""One training run with Keras: the stages of the recipe that need TensorFlow.

Imported only inside ``train_model`` (``monitor.inference.training.recipe``, which describes the
recipe); it takes the prepared data and options and hands back the fitted networks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import numpy as np

from monitor.domain import Box, Detection
from monitor.inference.calibration import (
    fit_temperature,
    negative_log_likelihood,
    softmax_calibration_error,
    threshold_report,
)
from monitor.inference.classifier import LogoClassifier, keras_predict_function
from monitor.inference.datasets import LabeledPhoto
from monitor.inference.model_dir import BACKBONE_NAME, ModelMetadata
from monitor.inference.network import build_backbone, build_head, build_logo_model, pooled_width
from monitor.inference.samples import SampleSpec, hard_negative_candidates, render_all
from monitor.inference.training import fitting
from monitor.inference.training.data import (
    PreparedData,
    class_weights,
    loss_share,
    picture_chunks,
    validation_negatives,
)
from monitor.inference.training.options import Progress, TrainingProgress, TrainOptions
from monitor.inference.windows import best_brand, logo_probabilities, softmax


class TrainingRun:
    """Holds the networks and cached features of one run between its stages."""

    def __init__(self, *, prepared: PreparedData, options: TrainOptions, report: Progress) -> None:
        self.prepared = prepared
        self.options = options
        self.report = report
        self.labels = prepared.dataset.labels
        self.num_outputs = len(self.labels) + 1
        self.backbone = build_backbone(
            image_size=options.image_size, weights=options.backbone_weights
        )
        self.head = build_head(
            features=pooled_width(options.pooling),
            num_outputs=self.num_outputs,
            dropout_rate=options.dropout_rate,
            seed=options.seed,
        )
        cut = (
            fitting.cut_layer_name(self.backbone, options.finetune_from_block)
            if options.epochs_finetune > 0
            else None
        )
        self.lower, self.upper = fitting.split_backbone(self.backbone, cut)
        self.finetune: keras.Model | None = None
        self.stages: dict[str, fitting.StageResult] = {}
        self.validation_logits: np.ndarray | None = None
        self.validation: fitting.Arrays | None = None
        self.hard_negative_summary: dict[str, Any] = {}
        self.no_logo_loss_share: float | None = None

    # --- fitting ---------------------------------------------------------------------------------

    def fit(self) -> dict[str, float]:
        """Cache features, fit the head, fine-tune; return the seconds each step took."""
        timings: dict[str, float] = {}
        clock = time.monotonic()
        train = self._arrays(self.prepared.train_photos, self.prepared.train_specs, "train")
        validation = self._arrays(
            self.prepared.validation_photos, self.prepared.validation_specs, "validation"
        )
        self.validation = validation if len(validation) else None
        timings["features"] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()
        self._fit_head(train, validation)
        timings["head"] = round(time.monotonic() - clock, 1)
        if self.options.hard_negatives > 0:
            clock = time.monotonic()
            train = self._with_hard_negatives(train)
            if self.upper is None:
                self._fit_head(train, validation)
            timings["hard_negatives"] = round(time.monotonic() - clock, 1)
        self.no_logo_loss_share = loss_share(train.labels, train.weights, len(self.labels))
        if self.upper is not None:
            clock = time.monotonic()
            self._fit_finetune(train, validation)
            timings["finetune"] = round(time.monotonic() - clock, 1)
        return timings

    def _arrays(
        self, photos: Sequence[LabeledPhoto], specs: Sequence[SampleSpec], side: str
    ) -> fitting.Arrays:
        """Lower-backbone features of every sample of one side, with targets and weights."""
        size = self.options.image_size
        labels = np.array([spec.label for spec in specs], dtype=np.int32)
        boxes = np.array(
            [(*spec.box_fractions, float(spec.has_box)) for spec in specs], dtype=np.float32
        ).reshape(-1, 5)
        weights = self._sample_weights(labels)
        if not specs:
            return fitting.Arrays(np.zeros((0,)), labels, boxes, weights)
        pooling = self.options.pooling if self.upper is None else None
        extract = fitting.extraction_function(self.lower, size, pooling=pooling)

        def on_batch(done: int, total: int) -> None:
            self.report(TrainingProgress("features", done, total, message=f"{side} samples"))

        def samples() -> Iterator[np.ndarray]:
            return render_all(photos, specs, size, max_pixels=self.options.max_image_pixels)

        features = fitting.extract_features(
            extract, samples, count=len(specs), image_size=size, on_batch=on_batch
        )
        return fitting.Arrays(features, labels, boxes, weights)

    def _with_hard_negatives(self, train: fitting.Arrays) -> fitting.Arrays:
        """``train`` plus the logo-free grid windows the fitted head most takes for a logo.

        Scored with the head just fitted (and the not yet fine-tuned upper backbone), the hardest
        ``hard_negatives`` candidates join the "no logo" class for the rest of training.
        """
        photos = self.prepared.train_photos
        inference = self.options.inference
        candidates = hard_negative_candidates(
            photos,
            no_logo=len(self.labels),
            grids=inference.grids,
            overlap=inference.overlap,
            min_window_side=inference.min_window_side,
            per_photo=self.options.hard_negative_candidates_per_photo,
            rng=np.random.default_rng([self.options.seed, 5]),
        )
        if not candidates:
            self.hard_negative_summary = {"candidates": 0, "kept": 0}
            return train
        mined = self._arrays(photos, candidates, "hard-negative candidates")
        pooled = fitting.pool_features(self.upper, mined.features, self.options.pooling)
        logits = fitting.predict_logits(self.head, pooled)
        # Ranked as the classifier decides: by the probability of some logo.
        logo_probability = logo_probabilities(softmax(logits), len(self.labels))
        hardest = np.argsort(-logo_probability)[: self.options.hard_negatives]
        self.hard_negative_summary = {
            "candidates": len(candidates),
            "kept": len(hardest),
            "lowest_kept_logo_probability": round(float(logo_probability[hardest].min()), 4),
        }
        return fitting.concatenate_arrays(train, mined, hardest, weights_for=self._sample_weights)

    def _sample_weights(self, labels: np.ndarray) -> np.ndarray:
        """Each sample's class weight: every class present alike, or "no logo" its own share."""
        weights = class_weights(
            labels, self.num_outputs, no_logo_share=self.options.no_logo_weight_share
        )
        return weights[labels].astype(np.float32)

    def _fit_head(self, train: fitting.Arrays, validation: fitting.Arrays) -> None:
        """Fit the head on pooled features (fast: the backbone does not run)."""
        train_pooled = fitting.pool_features(self.upper, train.features, self.options.pooling)
        validation_pooled = (
            fitting.pool_features(self.upper, validation.features, self.options.pooling)
            if len(validation)
            else None
        )
        trainer = fitting.head_trainer(self.head)
        fitting.compile_for_training(
            trainer,
            learning_rate=self.options.head_learning_rate,
            box_weight=self.options.box_loss_weight,
            label_smoothing=self.options.label_smoothing,
            weight_decay=self.options.weight_decay,
        )
        self.stages["head"] = fitting.fit_stage(
            trainer,
            train=train,
            train_inputs=train_pooled,
            validation=validation,
            validation_inputs=validation_pooled,
            epochs=self.options.epochs_head,
            batch_size=self.options.batch_size,
            seed=self.options.seed,
            report=self._batch_reporter("head", self.options.epochs_head),
        )
        if validation_pooled is not None:
            self.validation_logits = fitting.predict_logits(self.head, validation_pooled)

    def _fit_finetune(self, train: fitting.Arrays, validation: fitting.Arrays) -> None:
        """Fine-tune the upper backbone and the head on cached lower features."""
        assert self.upper is not None
        self.finetune = fitting.finetune_model(
            self.upper, self.head, train.features.shape[1:], self.options.pooling
        )
        batches = -(-len(train) // self.options.batch_size)
        fitting.compile_for_training(
            self.finetune,
            learning_rate=self.options.finetune_learning_rate,
            box_weight=self.options.box_loss_weight,
            label_smoothing=self.options.label_smoothing,
            weight_decay=self.options.weight_decay,
            warmup_steps=round(self.options.finetune_warmup_epochs * batches),
        )
        self.stages["finetune"] = fitting.fit_stage(
            self.finetune,
            train=train,
            train_inputs=train.features,
            validation=validation,
            validation_inputs=validation.features if len(validation) else None,
            epochs=self.options.epochs_finetune,
            batch_size=self.options.batch_size,
            seed=self.options.seed + 1,
            report=self._batch_reporter("finetune", self.options.epochs_finetune),
            average_from=self.options.epochs_finetune // 2 + 1,
            keep_start=True,
        )
        if len(validation):
            self.validation_logits = fitting.predict_logits(self.finetune, validation.features)

    def _batch_reporter(self, stage: str, epochs: int) -> fitting.BatchReport:
        def report(epoch: int, batch: int, batches: int, logs: dict[str, float]) -> None:
            metrics = {
                "loss": float(logs.get("loss", float("nan"))),
                "accuracy": float(logs.get("logits_categorical_accuracy", float("nan"))),
            }
            self.report(
                TrainingProgress(stage, batch, batches, epoch=epoch, epochs=epochs, metrics=metrics)
            )

        return report

    # --- calibration -----------------------------------------------------------------------------

    def calibrate(self) -> dict[str, Any]:
        """Temperature on validation windows, then the no-logo threshold on validation photos."""
        self.report(TrainingProgress("calibrating", 0, 2, message="temperature"))
        calibration = self.temperature_calibration()
        self.report(TrainingProgress("calibrating", 1, 2, message="no-logo threshold"))
        calibration["threshold"] = self._threshold(calibration["temperature"])
        self.report(TrainingProgress("calibrating", 2, 2, message="done"))
        return calibration

    def temperature_calibration(self) -> dict[str, Any]:
        """The temperature fitted on validation windows (1 without any), with ECE before and after."""
        if self.validation is None or self.validation_logits is None:
            return {"temperature": 1.0}
        return self._temperature(self.validation_logits, self.validation.labels)

    @staticmethod
    def _temperature(logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        temperature = fit_temperature(logits, labels)
        return {
            "temperature": round(temperature, 4),
            "validation_windows": len(labels),
            "validation_window_accuracy": float(np.mean(logits.argmax(axis=1) == labels)),
            "ece_before": round(softmax_calibration_error(logits, labels, 1.0), 4),
            "ece_after": round(softmax_calibration_error(logits, labels, temperature), 4),
            "nll_before": round(negative_log_likelihood(logits, labels, 1.0), 4),
            "nll_after": round(negative_log_likelihood(logits, labels, temperature), 4),
        }

    def _threshold(self, temperature: float) -> dict[str, Any]:
        """Choose the threshold on validation photos and logo-free pictures, multi-scale."""
        photos = self.prepared.validation_photos
        logo_photos = [photo for photo in photos if photo.has_logo]
        if not self.prepared.knows_no_logo:
            return self._closed_set_validation(temperature, logo_photos)
        negatives = validation_negatives(photos, seed=self.options.seed)
        if not logo_photos and not negatives:
            return {"value": 0.5, "note": "no validation photos: default threshold"}
        classifier = self.classifier(temperature=temperature, threshold=0.5)
        logo_scores = _scores(classifier, [(photo, None) for photo in logo_photos], self.options)
        negative_scores = _scores(classifier, negatives, self.options)
        return threshold_report(
            logo_scores=[score for score, _ in logo_scores],
            logo_correct=[
                brand in photo.brands
                for (_, brand), photo in zip(logo_scores, logo_photos, strict=True)
            ],
            no_logo_scores=[score for score, _ in negative_scores],
            max_false_positive_rate=self.options.max_false_positive_rate,
            confidence=self.options.false_positive_confidence,
        )

    def _closed_set_validation(
        self, temperature: float, logo_photos: Sequence[LabeledPhoto]
    ) -> dict[str, Any]:
        """No threshold to choose (no "no logo" answer); how often validation photos are named right."""
        result: dict[str, Any] = {
            "value": 0.0,
            "note": "no logo-free pictures: no 'no logo' answer; every photo names its most "
            "probable class",
            "validation_logo_photos": len(logo_photos),
        }
        if not logo_photos:
            return result
        classifier = self.classifier(temperature=temperature, threshold=0.0)
        named = [
            detections[0].brand for detections in _classify(classifier, logo_photos, self.options)
        ]
        right = sum(brand in photo.brands for brand, photo in zip(named, logo_photos, strict=True))
        accuracy = round(right / len(logo_photos), 4)
        return {**result, "validation_accuracy": accuracy, "validation_brand_accuracy": accuracy}

    # --- results ---------------------------------------------------------------------------------

    def final_model(self, *, resize: bool = True) -> keras.Model:
        """The model to save: raw pixels in, logits and box out, sharing the trained layers.

        ``resize=False``: the same network on pixels already at the input size (int8 export).
        """
        return build_logo_model(
            backbone=self.backbone,
            head=self.head,
            image_size=self.options.image_size,
            pooling=self.options.pooling,
            resize=resize,
        )

    def classifier(self, *, temperature: float, threshold: float) -> LogoClassifier:
        """A classifier on the in-memory model, to score validation photos before saving."""
        metadata = ModelMetadata(
            version="validation",
            labels=self.labels,
            input_size=self.options.image_size,
            no_logo_threshold=threshold,
            temperature=temperature,
            backbone=BACKBONE_NAME,
            backbone_weights=self.options.backbone_weights,
            created_at="",
            training_seconds=0.0,
            inference=self.options.inference,
            knows_no_logo=self.prepared.knows_no_logo,
        )
        predict = keras_predict_function(self.final_model(), self.options.image_size)
        return LogoClassifier(metadata=metadata, predict=predict)

    def curves(self) -> dict[str, list[float]]:
        """Per-epoch loss and accuracy over both stages, for the training-curve picture."""
        names = {
            "loss": "train loss",
            "val_loss": "validation loss",
            "logits_categorical_accuracy": "train accuracy",
            "val_logits_categorical_accuracy": "validation accuracy",
        }
        curves: dict[str, list[float]] = {label: [] for label in names.values()}
        for stage in self.stages.values():
            for key, label in names.items():
                curves[label].extend(stage.history.get(key, []))
        return curves

    def stage_summaries(self) -> dict[str, Any]:
        """Per stage: epochs run, the kept epoch and its validation values."""
        summaries: dict[str, Any] = {}
        for name, stage in self.stages.items():
            index = stage.best_epoch - 1
            summary: dict[str, Any] = {
                "epochs": len(stage.history.get("loss", [])),
                "best_epoch": stage.best_epoch,
                "kept": _kept(stage),
                "kept_validation_loss": round(stage.best_value, 4),
            }
            for key in ("val_logits_loss", "val_logits_categorical_accuracy"):
                values = stage.history.get(key, [])
                if 0 <= index < len(values):
                    summary[key.replace("categorical_", "")] = round(values[index], 4)
            summaries[name] = summary
        return summaries


def _classify(
    classifier: LogoClassifier, photos: Sequence[LabeledPhoto], options: TrainOptions
) -> list[list[Detection]]:
    """The classifier's detections of each whole photo, a few photos at a time."""
    found: list[list[Detection]] = []
    for images in picture_chunks(
        [(photo, None) for photo in photos], max_pixels=options.max_image_pixels
    ):
        found.extend(classifier.classify(images))
    return found


def _scores(
    classifier: LogoClassifier,
    pictures: Sequence[tuple[LabeledPhoto, Box | None]],
    options: TrainOptions,
) -> list[tuple[float, str]]:
    """(highest logo probability, that window's brand) of each picture, a few at a time."""
    scores: list[tuple[float, str]] = []
    for images in picture_chunks(pictures, max_pixels=options.max_image_pixels):
        for predictions in classifier.analyse(images):
            scores.append(best_brand(predictions.probabilities, classifier.labels))
    return scores


def _kept(stage: fitting.StageResult) -> str:
    """Which weights a stage kept, in words."""
    if stage.averaged_from:
        return f"average of epochs {stage.averaged_from}-{len(stage.history.get('loss', []))}"
    if stage.best_epoch == 0:
        return "epoch 0 (no epoch beat the weights the stage started from)"
    return f"epoch {stage.best_epoch}"
