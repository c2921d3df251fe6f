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

With ``architecture="auto"`` (the default) a dataset with logo boxes trains the detector and a
folder per brand the window classifier. ``architecture="detector"`` trains the one-pass detector
instead (steps 2-5 are
``monitor.inference.training.detector_run``): views of whole photos, the backbone's top blocks and
a feature-pyramid head fitted on the boxes, Platt-calibrated peak scores, and an int8 LiteRT file
beside the Keras model. Then its second look (``monitor.inference.training.verifier_run``): a
window classifier trained on the detector's own candidates, whose logo probability a logistic
fit on validation candidates combines with the detector's score; it is saved beside the detector
(``verifier.keras``, ``verifier_int8.tflite``).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from monitor.exceptions import ConfigurationError
from monitor.inference.datasets import detect_layout
from monitor.inference.model_dir import (
    BACKBONE_NAME,
    CURVE_FILE,
    LITERT_FILE,
    METRICS_FILE,
    MODEL_FILE,
    SPLIT_FILE,
    VERIFIER_FILE,
    VERIFIER_LITERT_FILE,
    InferenceSettings,
    ModelMetadata,
    new_version,
    utc_timestamp,
    write_json,
    write_metadata,
)
from monitor.inference.training.data import PreparedData, prepare_data
from monitor.inference.training.options import (
    ModelInfo,
    Progress,
    TrainingProgress,
    TrainOptions,
    no_progress,
    resolved_architecture,
)


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
    report = progress or no_progress
    started = time.monotonic()
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    report(TrainingProgress("reading", 0, 1, message=f"reading {dataset_dir}"))
    options = resolved_architecture(options, dataset_layout=detect_layout(Path(dataset_dir)))
    prepared = prepare_data(Path(dataset_dir), options)
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


def _train_into(
    target: Path,
    prepared: PreparedData,
    options: TrainOptions,
    report: Progress,
    started: float,
) -> tuple[ModelMetadata, dict[str, Any]]:
    """Fit, calibrate and save into ``target`` (the staging folder)."""
    from monitor.inference._tensorflow import import_tensorflow

    import_tensorflow()
    if options.architecture == "detector":
        return _train_detector_into(target, prepared, options, report, started)
    from monitor.inference.training.run import TrainingRun

    run = TrainingRun(prepared=prepared, options=options, report=report)
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
    _write_records(target, prepared, metrics, run.curves(), report)
    return metadata, metrics


def _write_records(
    target: Path,
    prepared: PreparedData,
    metrics: dict[str, Any],
    curves: dict[str, list[float]],
    report: Progress,
) -> None:
    """What every model directory has beside the model: metrics, split and training curve."""
    write_json(target / METRICS_FILE, metrics)
    write_json(target / SPLIT_FILE, prepared.split.to_dict(dataset=prepared.dataset))
    from monitor.inference.plots import plot_training_curves

    plot_training_curves(curves, target / CURVE_FILE)
    report(TrainingProgress("saving", 1, 1, message="done"))


def _train_detector_into(
    target: Path,
    prepared: PreparedData,
    options: TrainOptions,
    report: Progress,
    started: float,
) -> tuple[ModelMetadata, dict[str, Any]]:
    """The one-pass detector's fit, calibration and save into ``target``."""
    from monitor.inference.training.detector_run import DetectorRun

    run = DetectorRun(prepared=prepared, options=options, report=report)
    timings = run.fit()
    box_scale = run.fit_box_scale()
    verifier_summary = None
    if options.verifier and prepared.knows_no_logo:
        clock = time.monotonic()
        verifier_summary = run.fit_verifier()
        timings["verifier"] = round(time.monotonic() - clock, 1)
    calibration = run.calibrate()
    report(TrainingProgress("saving", 0, 1, message=f"writing {target}"))
    training_seconds = time.monotonic() - started
    metadata = replace(
        run.metadata(
            version=new_version(),
            calibration=tuple(calibration["score_calibration"]),  # type: ignore[arg-type]
            threshold=calibration["threshold"]["value"],
        ),
        created_at=utc_timestamp(),
        training_seconds=round(training_seconds, 1),
    )
    final_model = run.final_model()
    final_model.save(target / MODEL_FILE)
    clock = time.monotonic()
    report(TrainingProgress("saving", 0, 1, message="int8 LiteRT export"))
    from monitor.inference.litert import export_int8

    export_int8(
        final_model,
        input_size=metadata.input_size,
        representative=run.representative_pixels(),
        path=target / LITERT_FILE,
    )
    if run.verifier_run is not None and metadata.verifier is not None:
        run.verifier_run.final_model().save(target / VERIFIER_FILE)
        export_int8(
            run.verifier_run.final_model(resize=False),
            input_size=metadata.verifier.input_size,
            representative=run.verifier_representative_pixels(),
            path=target / VERIFIER_LITERT_FILE,
        )
    timings["int8_export"] = round(time.monotonic() - clock, 1)
    write_metadata(target, metadata)
    metrics = {
        **_data_summary(prepared),
        "architecture": "detector",
        "stages": run.stage_summaries(),
        "verifier": verifier_summary,
        "box_scale": box_scale,
        "calibration": calibration,
        "timings_seconds": {**timings, "total": round(training_seconds, 1)},
        "options": _options_dict(options),
    }
    _write_records(target, prepared, metrics, run.curves(), report)
    return metadata, metrics


def _data_summary(prepared: PreparedData) -> dict[str, Any]:
    """The part of the metrics file that describes the data, the same for both architectures."""
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
        "photos_with_unboxed_logos": {
            "train": sum(photo.unboxed_logos for photo in prepared.train_photos),
            "validation": sum(photo.unboxed_logos for photo in prepared.validation_photos),
        },
        "added_logo_boxes_in_training": _added_boxes(prepared),
    }


def _added_boxes(prepared: PreparedData) -> int:
    """How many boxes the dataset's unboxed-logo list added to the training photos."""
    annotated = prepared.dataset.by_name()
    return sum(
        len(photo.boxes) - len(annotated[photo.name].boxes)
        for photo in prepared.train_photos
        if photo.name in annotated
    )


def _metrics(
    prepared: PreparedData,
    options: TrainOptions,
    run: Any,
    timings: dict[str, float],
    calibration: dict[str, Any],
    training_seconds: float,
) -> dict[str, Any]:
    """The metrics file: data sizes, per-stage results, calibration, threshold, timings."""
    no_logo = len(prepared.dataset.labels)
    return {
        **_data_summary(prepared),
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
