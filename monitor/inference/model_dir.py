"""The model directory: what ``monitor train`` writes and every classifier loads.

A model directory holds::

    model_int8.tflite    (detectors) the same network quantized to int8, for CPU workers
    verifier.keras       (detectors with a second look) the window classifier that looks again
                         at the detector's best candidates (``monitor.inference.verification``)
    verifier_int8.tflite (the same) quantized to int8
    model.keras          the Keras model; input: raw RGB pixels (any size, 0-255), outputs:
                         "logits" (brands + one "no logo" column, last) and "box" (x1, y1, x2, y2
                         as fractions of the input, the place of the logo in it)
    metadata.json        ModelMetadata: version, labels, input size, threshold, temperature, ...
    metrics.json         what training measured (validation numbers, calibration error, timings)
    training_curve.png   loss and accuracy per epoch
    split.json           (trained models) which photos were used for training, validation, test

This module reads and writes the JSON parts and checks them; it never imports TensorFlow, so the
metadata of a model can be read cheaply (``monitor status``, the worker deciding what to load).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.exceptions import ModelError
from monitor.inference.verification import IDENTITY_COMBINATION, VerifierSettings

FORMAT_NAME = "monitor-logo-model"
FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
LITERT_FILE = "model_int8.tflite"
VERIFIER_FILE = "verifier.keras"
VERIFIER_LITERT_FILE = "verifier_int8.tflite"
METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.json"
CURVE_FILE = "training_curve.png"
SPLIT_FILE = "split.json"
BACKBONE_NAME = "MobileNetV2"
"""The backbone trained models are built on (recorded in their metadata)."""
LOGITS_OUTPUT = "logits"
BOX_OUTPUT = "box"
HEATMAP_OUTPUT = "heatmap"
ARCHITECTURES = ("windows", "detector")
"""``windows``: the classifier applied to grids of windows; ``detector``: the one-pass detector."""
MIN_BOX_SCALE = 0.5
MAX_BOX_SCALE = 2.0
"""The range a detector's ``box_scale`` (the factor on its boxes' sides) must lie in."""


@dataclass(frozen=True)
class InferenceSettings:
    """How a model is applied to a photo: which windows are classified and how results merge.

    ``grids`` lists the tilings looked at: 1 is the whole photo, n an n-by-n grid of windows that
    overlap by ``overlap`` of their size. Windows smaller than ``min_window_side`` pixels are
    skipped: blown up to the model's 224 pixels they are mostly blur, which the model took for a
    logo far more often than it found one there. On FlickrLogos-27 validation photos (one model,
    all else equal) skipping windows under 80 pixels rather than 48 raised the brand accuracy at
    about 5% false positives from 0.71 to 0.78. A 4x4 grid still runs on photos from about 250
    pixels a side. Detections of one brand whose boxes overlap by at least ``nms_iou``
    (intersection over union) are one logo.
    """

    grids: tuple[int, ...] = (1, 2, 3, 4)
    overlap: float = 0.25
    min_window_side: int = 80
    nms_iou: float = 0.4
    batch_size: int = 32

    def __post_init__(self) -> None:
        if not self.grids or any(grid < 1 for grid in self.grids):
            raise ValueError(f"grids must be positive integers, got {self.grids}")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        if self.min_window_side < 1 or self.batch_size < 1:
            raise ValueError("min_window_side and batch_size must be positive")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {self.nms_iou}")


@dataclass(frozen=True)
class ModelMetadata:
    """Everything a classifier needs to know about a model besides its weights.

    ``no_logo_threshold`` applies to calibrated probabilities (logits divided by ``temperature``):
    a window shows a logo when 1 - P(no logo) reaches the threshold, and names its most probable
    brand.

    ``knows_no_logo`` is false for a model trained without a single logo-free picture (a folder
    per class and nothing else): it never learnt what "no logo" looks like, so it has no such
    answer. It names its most probable class for every picture, once, and its threshold is 0.

    ``architecture`` says how the model is applied (``ARCHITECTURES``). For the one-pass detector
    ``score_calibration`` holds (slope, intercept) of the Platt scaling fitted on validation: a
    heatmap peak's score s becomes sigmoid(slope x logit(s) + intercept), and
    ``no_logo_threshold`` applies to that calibrated score; ``temperature`` is unused (1).
    A detector with ``verifier`` settings looks again at its best candidates with a window
    classifier (``verifier.keras``); its threshold applies to the combined probability.
    ``box_scale`` widens (or narrows) every box the detector reads about its centre, a factor
    fitted on validation logos: the box regression, trained with GIoU, answers an uncertain
    extent with a box inside the logo, and a constant factor undoes most of that.
    """

    version: str
    labels: tuple[str, ...]
    input_size: int
    no_logo_threshold: float
    temperature: float
    backbone: str
    backbone_weights: str
    created_at: str
    training_seconds: float
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    knows_no_logo: bool = True
    architecture: str = "windows"
    score_calibration: tuple[float, float] = (1.0, 0.0)
    verifier: VerifierSettings | None = None
    box_scale: float = 1.0
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION

    @property
    def num_outputs(self) -> int:
        """Columns of the logits output: one per brand plus the "no logo" column."""
        return len(self.labels) + 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (tuples become lists)."""
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["score_calibration"] = list(self.score_calibration)
        data["inference"]["grids"] = list(self.inference.grids)
        data["verifier"] = self.verifier.to_dict() if self.verifier is not None else None
        return data


def new_version(now: datetime | None = None) -> str:
    """A version string unique per training run that sorts by time: ``20250101T120000Z-1a2b3c4d``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def utc_timestamp(now: datetime | None = None) -> str:
    """An ISO 8601 UTC timestamp for ``created_at``."""
    return (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (a reader never sees half a file)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)


def write_metadata(model_dir: Path, metadata: ModelMetadata) -> None:
    """Write ``metadata.json`` into ``model_dir``."""
    write_json(model_dir / METADATA_FILE, metadata.to_dict())


def read_metadata(model_dir: Path) -> ModelMetadata:
    """Read and check ``metadata.json``; raise ModelError naming what is wrong."""
    if not model_dir.exists():
        raise ModelError(
            f"model directory {model_dir} does not exist (train one with monitor train)"
        )
    if not model_dir.is_dir():
        raise ModelError(f"model path {model_dir} is not a directory")
    path = model_dir / METADATA_FILE
    if not path.is_file():
        raise ModelError(f"{model_dir} is not a model directory: {METADATA_FILE} is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path} does not hold a JSON object")
    return _metadata_from_dict(data, source=path)


def _metadata_from_dict(data: dict[str, Any], *, source: Path) -> ModelMetadata:
    """Build ModelMetadata from parsed JSON, checking the format and every field's type."""
    if data.get("format") != FORMAT_NAME:
        raise ModelError(f"{source} is not {FORMAT_NAME} metadata (format={data.get('format')!r})")
    if data.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{source} has format version {data.get('format_version')!r}; "
            f"this monitor reads version {FORMAT_VERSION} (retrain the model)"
        )
    labels = _field(data, "labels", list, source)
    if not labels or not all(isinstance(label, str) and label for label in labels):
        raise ModelError(f"{source}: labels must be a non-empty list of names")
    if len(set(labels)) != len(labels):
        raise ModelError(f"{source}: labels must be unique")
    metadata = ModelMetadata(
        version=_field(data, "version", str, source),
        labels=tuple(labels),
        input_size=_field(data, "input_size", int, source),
        no_logo_threshold=float(_field(data, "no_logo_threshold", (int, float), source)),
        temperature=float(_field(data, "temperature", (int, float), source)),
        backbone=_field(data, "backbone", str, source),
        backbone_weights=_field(data, "backbone_weights", str, source),
        created_at=_field(data, "created_at", str, source),
        training_seconds=float(_field(data, "training_seconds", (int, float), source)),
        inference=_inference_from_dict(_field(data, "inference", dict, source), source=source),
        knows_no_logo=_knows_no_logo(data, source),
        architecture=_architecture(data, source),
        score_calibration=_score_calibration(data, source),
        verifier=_verifier(data, source),
        box_scale=_box_scale(data, source),
    )
    _check_ranges(metadata, source)
    return metadata


def _inference_from_dict(data: dict[str, Any], *, source: Path) -> InferenceSettings:
    """The inference settings, checked by InferenceSettings itself."""
    try:
        return InferenceSettings(**{**data, "grids": tuple(data.get("grids", ()))})
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{source}: invalid inference settings: {exc}") from exc


def _knows_no_logo(data: dict[str, Any], source: Path) -> bool:
    """The optional ``knows_no_logo`` flag; models written before it existed all learnt "no logo"."""
    value = data.get("knows_no_logo", True)
    if not isinstance(value, bool):
        raise ModelError(f"{source}: field 'knows_no_logo' must be true or false")
    return value


def _architecture(data: dict[str, Any], source: Path) -> str:
    """The optional ``architecture``; models written before the detector existed are "windows"."""
    value = data.get("architecture", "windows")
    if value not in ARCHITECTURES:
        raise ModelError(
            f"{source}: architecture {value!r} is not one this monitor knows "
            f"({', '.join(ARCHITECTURES)}); retrain the model with monitor train"
        )
    return str(value)


def _score_calibration(data: dict[str, Any], source: Path) -> tuple[float, float]:
    """The optional Platt (slope, intercept) of a detector's scores; identity when absent."""
    value = data.get("score_calibration", [1.0, 0.0])
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in value)
    ):
        raise ModelError(f"{source}: score_calibration must be a list of two numbers")
    return (float(value[0]), float(value[1]))


def _verifier(data: dict[str, Any], source: Path) -> VerifierSettings | None:
    """The optional second-look settings of a detector; absent or null means none."""
    value = data.get("verifier")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ModelError(f"{source}: verifier must be an object or null")
    try:
        return VerifierSettings(
            **{**value, "combination": tuple(value.get("combination", IDENTITY_COMBINATION))}
        )
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{source}: invalid verifier settings: {exc}") from exc


def _box_scale(data: dict[str, Any], source: Path) -> float:
    """The optional box scale of a detector; 1 (boxes as read) for models written before it."""
    value = data.get("box_scale", 1.0)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ModelError(f"{source}: box_scale must be a number")
    return float(value)


def _field(data: dict[str, Any], name: str, kind: Any, source: Path) -> Any:
    """One required field of the expected JSON type."""
    if name not in data:
        raise ModelError(f"{source}: field {name!r} is missing")
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ModelError(f"{source}: field {name!r} has the wrong type ({type(value).__name__})")
    return value


def _check_ranges(metadata: ModelMetadata, source: Path) -> None:
    """Values a classifier cannot work with."""
    if metadata.input_size < 8:
        raise ModelError(f"{source}: input_size {metadata.input_size} is too small")
    if not 0.0 <= metadata.no_logo_threshold <= 1.0:
        raise ModelError(f"{source}: no_logo_threshold must be in [0, 1]")
    if metadata.temperature <= 0:
        raise ModelError(f"{source}: temperature must be positive")
    if not MIN_BOX_SCALE <= metadata.box_scale <= MAX_BOX_SCALE:
        raise ModelError(f"{source}: box_scale must be in [{MIN_BOX_SCALE}, {MAX_BOX_SCALE}]")
