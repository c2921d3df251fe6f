"""The logo classifier the workers and ``monitor classify`` use: load a model directory, classify.

Importing this module does not import TensorFlow; ``load_classifier`` does, the first time it runs
(a Celery worker loads the model in each child process, after the fork).

How a photo is classified: the whole photo and grids of overlapping windows (see
``monitor.inference.windows``) are each resized to the model's input and classified in batches;
a window whose logo probability (1 - P(no logo)) reaches the calibrated threshold is a detection of
its most probable brand, with that logo probability, its box mapped back to photo pixels;
detections of one logo seen in several windows are merged. A model trained without logo-free
pictures has no "no logo" answer and names its most probable class once per photo
(``monitor.inference.windows.closed_set_detection``).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL.Image import Image

from monitor.domain import Box, Detection
from monitor.exceptions import ModelError
from monitor.inference.detection import DetectorPredict, LogoDetector
from monitor.inference.heatmaps import grid_side
from monitor.inference.model_dir import (
    BOX_OUTPUT,
    HEATMAP_OUTPUT,
    LITERT_FILE,
    LOGITS_OUTPUT,
    MODEL_FILE,
    VERIFIER_FILE,
    VERIFIER_LITERT_FILE,
    ModelMetadata,
    read_metadata,
)
from monitor.inference.pixels import window_pixels
from monitor.inference.windows import (
    closed_set_detection,
    grid_windows,
    non_maximum_suppression,
    softmax,
    window_detections,
)

Predict = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Raw pixels (n, size, size, 3) -> (logits (n, labels + 1), box fractions (n, 4))."""

_LOAD_ERRORS = (OSError, ValueError, TypeError, KeyError, AttributeError, zipfile.BadZipFile)


@dataclass(frozen=True)
class WindowPredictions:
    """What the model said about each window of one image (calibrated probabilities)."""

    windows: list[Box]
    probabilities: np.ndarray
    box_fractions: np.ndarray


class LogoClassifier:
    """Finds brand logos in pictures with one trained model."""

    def __init__(self, *, metadata: ModelMetadata, predict: Predict) -> None:
        self.metadata = metadata
        self.version: str = metadata.version
        self.labels: list[str] = list(metadata.labels)
        self._predict = predict

    def classify(
        self,
        images: Sequence[Image],
        *,
        grids: Sequence[int] | None = None,
        threshold: float | None = None,
    ) -> list[list[Detection]]:
        """One list of detections per input image, most probable first; empty means no logo.

        ``grids`` overrides the model's window grids, e.g. ``(1,)`` for a single whole-photo pass;
        ``threshold`` the model's threshold (evaluation asks for every candidate).
        """
        return [
            self.detections(predictions, threshold=threshold)
            for predictions in self.analyse(images, grids=grids)
        ]

    def detections(
        self, predictions: WindowPredictions, *, threshold: float | None = None
    ) -> list[Detection]:
        """The merged detections of one image's window predictions at ``threshold``.

        A model without a "no logo" answer (``metadata.knows_no_logo`` false) gives exactly one
        detection per image, its most probable class, whatever the threshold.
        """
        if not self.metadata.knows_no_logo:
            return closed_set_detection(
                predictions.probabilities,
                predictions.box_fractions,
                predictions.windows,
                labels=self.labels,
            )
        found = window_detections(
            predictions.probabilities,
            predictions.box_fractions,
            predictions.windows,
            labels=self.labels,
            threshold=self.metadata.no_logo_threshold if threshold is None else threshold,
        )
        return non_maximum_suppression(found, iou_threshold=self.metadata.inference.nms_iou)

    def analyse(
        self, images: Sequence[Image], *, grids: Sequence[int] | None = None
    ) -> list[WindowPredictions]:
        """Classify every window of every image, batching windows across images."""
        settings = self.metadata.inference
        chosen_grids = tuple(grids) if grids is not None else settings.grids
        per_image = [
            grid_windows(
                *image.size,
                grids=chosen_grids,
                overlap=settings.overlap,
                min_window_side=settings.min_window_side,
            )
            for image in images
        ]
        jobs = [(index, window) for index, windows in enumerate(per_image) for window in windows]
        logits, boxes = self._run(images, jobs)
        probabilities = softmax(logits, self.metadata.temperature)
        results: list[WindowPredictions] = []
        start = 0
        for windows in per_image:
            stop = start + len(windows)
            results.append(WindowPredictions(windows, probabilities[start:stop], boxes[start:stop]))
            start = stop
        return results

    def predict_pixels(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities and box fractions of windows already cut to the input size."""
        logits, boxes = self._predict(batch)
        return softmax(logits, self.metadata.temperature), boxes

    def _run(
        self, images: Sequence[Image], jobs: Sequence[tuple[int, Box]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Model outputs for every (image index, window) job, in order, in fixed-size batches."""
        size = self.metadata.input_size
        batch_size = self.metadata.inference.batch_size
        logits_parts: list[np.ndarray] = []
        box_parts: list[np.ndarray] = []
        for start in range(0, len(jobs), batch_size):
            batch = np.stack(
                [
                    window_pixels(_rgb(images[index]), window, size)
                    for index, window in jobs[start : start + batch_size]
                ]
            )
            logits, boxes = self._predict(batch)
            logits_parts.append(logits)
            box_parts.append(boxes)
        if not logits_parts:
            return np.zeros((0, self.metadata.num_outputs)), np.zeros((0, 4))
        return np.concatenate(logits_parts), np.concatenate(box_parts)


def _rgb(image: Image) -> Image:
    """The image in RGB (callers should pass RGB; a stray mode is converted, not rejected)."""
    return image if image.mode == "RGB" else image.convert("RGB")


def load_classifier(model_dir: Path, *, runtime: str = "auto") -> LogoClassifier | LogoDetector:
    """Load and check a model directory; raise ModelError saying what is missing or wrong.

    The metadata's ``architecture`` says which kind of model it is: the one-pass detector or the
    window classifier (models written before the detector existed). ``runtime`` chooses how a
    detector runs: "litert" its int8 file, "keras" the float model, "auto" the int8 file when the
    directory has one and TensorFlow sees no GPU (the float model is the one for a GPU).
    """
    model_dir = Path(model_dir)
    metadata = read_metadata(model_dir)
    if runtime not in RUNTIMES:
        raise ModelError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if metadata.architecture == "detector" and _uses_litert(model_dir, runtime):
        from monitor.inference.litert import LiteRTDetector

        litert = LiteRTDetector(model_dir / LITERT_FILE)
        _check_detector_outputs(litert.predict, metadata, model_dir)
        return LogoDetector(
            metadata=metadata,
            predict=litert.predict,
            runtime="litert",
            verify=_load_verifier(model_dir, metadata, litert=True),
        )
    if runtime == "litert":
        raise ModelError(
            f"{model_dir} has no int8 LiteRT file ({LITERT_FILE}): only detector models trained "
            "by monitor train have one; use the keras runtime"
        )
    model_path = model_dir / MODEL_FILE
    if not model_path.is_file():
        raise ModelError(f"{model_dir} is incomplete: {MODEL_FILE} is missing")
    model = _load_keras_model(model_path)
    if metadata.architecture == "detector":
        detector_predict = keras_detector_predict_function(model, metadata.input_size)
        _check_detector_outputs(detector_predict, metadata, model_dir)
        return LogoDetector(
            metadata=metadata,
            predict=detector_predict,
            verify=_load_verifier(model_dir, metadata, litert=False),
        )
    predict = keras_predict_function(model, metadata.input_size)
    _check_outputs(predict, metadata, model_dir)
    return LogoClassifier(metadata=metadata, predict=predict)


RUNTIMES = ("auto", "keras", "litert")


def _load_verifier(model_dir: Path, metadata: ModelMetadata, *, litert: bool) -> Predict | None:
    """The second-look window classifier of a detector, when its metadata names one.

    With the LiteRT runtime its int8 file is used when the directory has one.
    """
    settings = metadata.verifier
    if settings is None:
        return None
    checked = replace(metadata, input_size=settings.input_size, architecture="windows")
    if litert and (model_dir / VERIFIER_LITERT_FILE).is_file():
        from monitor.inference.litert import LiteRTWindows

        predict: Predict = LiteRTWindows(model_dir / VERIFIER_LITERT_FILE).predict
    else:
        path = model_dir / VERIFIER_FILE
        if not path.is_file():
            raise ModelError(
                f"{model_dir} is incomplete: its metadata names a verifier but {VERIFIER_FILE} "
                "is missing (retrain the model with monitor train)"
            )
        predict = keras_predict_function(_load_keras_model(path), settings.input_size)
    _check_outputs(predict, checked, model_dir)
    return predict


def _uses_litert(model_dir: Path, runtime: str) -> bool:
    """Whether a detector directory is run from its int8 file under ``runtime``."""
    present = (model_dir / LITERT_FILE).is_file()
    if runtime == "litert":
        if not present:
            raise ModelError(
                f"{model_dir} has no int8 LiteRT file ({LITERT_FILE}); retrain the model with "
                "monitor train, or use the keras runtime"
            )
        return True
    if runtime == "keras" or not present:
        return False
    from monitor.inference._tensorflow import import_tensorflow

    return not import_tensorflow().config.list_physical_devices("GPU")


def keras_detector_predict_function(model: Any, input_size: int) -> DetectorPredict:
    """A compiled function from letterboxed pixel batches to (heatmaps, boxes) as NumPy arrays.

    Used by ``load_classifier`` and by training, which scores validation photos with the detector
    it has just fitted, before it is saved.
    """
    return _compiled_predict(model, input_size, HEATMAP_OUTPUT)


def _check_detector_outputs(
    predict: DetectorPredict, metadata: ModelMetadata, model_dir: Path
) -> None:
    """Run one blank picture through the detector to check it fits the metadata."""
    from monitor.inference._tensorflow import import_tensorflow

    tensorflow = import_tensorflow()
    size = metadata.input_size
    try:
        heatmaps, boxes = predict(np.zeros((1, size, size, 3), dtype=np.uint8))
    except (KeyError, TypeError, ValueError, tensorflow.errors.OpError) as exc:
        raise ModelError(
            f"{model_dir}: the model does not give the detector's outputs "
            f"{HEATMAP_OUTPUT!r} and {BOX_OUTPUT!r} (retrain it with monitor train): {exc}"
        ) from exc
    cells = grid_side(size)
    if heatmaps.shape != (1, cells, cells, len(metadata.labels)):
        raise ModelError(
            f"{model_dir}: the detector's heatmap has shape {heatmaps.shape} but the metadata "
            f"lists {len(metadata.labels)} labels at input size {size}"
        )
    if boxes.shape != (1, cells, cells, 4):
        raise ModelError(f"{model_dir}: the box output has shape {boxes.shape}")


def _load_keras_model(model_path: Path) -> Any:
    """Load the saved Keras model (TensorFlow is imported here, on first use)."""
    from monitor.inference._tensorflow import import_tensorflow

    import_tensorflow()
    import keras

    from monitor.inference.network import masked_box_loss

    try:
        # The trained head is saved compiled; its custom loss must be known to deserialize it.
        return keras.saving.load_model(
            model_path, compile=False, custom_objects={"masked_box_loss": masked_box_loss}
        )
    except _LOAD_ERRORS as exc:
        raise ModelError(f"cannot load {model_path}: {exc}") from exc


def keras_predict_function(model: Any, input_size: int) -> Predict:
    """A compiled function from raw pixel batches to (logits, box fractions) as NumPy arrays.

    Used by ``load_classifier`` and by training, which classifies validation photos with the model
    it has just built, before it is saved.
    """
    return _compiled_predict(model, input_size, LOGITS_OUTPUT)


def _compiled_predict(
    model: Any, input_size: int, first_output: str
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Pixel batches of ``input_size`` squares to the model's ``first_output`` and box outputs."""
    from monitor.inference._tensorflow import import_tensorflow

    tensorflow = import_tensorflow()
    signature = [tensorflow.TensorSpec((None, input_size, input_size, 3), tensorflow.float32)]

    @tensorflow.function(input_signature=signature)
    def infer(pixels: Any) -> Any:
        return model(pixels, training=False)

    def predict(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outputs = infer(tensorflow.constant(batch, dtype=tensorflow.float32))
        return np.asarray(outputs[first_output]), np.asarray(outputs[BOX_OUTPUT])

    return predict


def _check_outputs(predict: Predict, metadata: ModelMetadata, model_dir: Path) -> None:
    """Run one blank picture through the model to check it fits the metadata."""
    from monitor.inference._tensorflow import import_tensorflow

    tensorflow = import_tensorflow()
    size = metadata.input_size
    try:
        logits, boxes = predict(np.zeros((1, size, size, 3), dtype=np.uint8))
    except (KeyError, TypeError, ValueError, tensorflow.errors.OpError) as exc:
        raise ModelError(
            f"{model_dir}: the model does not give the expected outputs "
            f"{LOGITS_OUTPUT!r} and {BOX_OUTPUT!r}: {exc}"
        ) from exc
    if logits.shape != (1, metadata.num_outputs):
        raise ModelError(
            f"{model_dir}: the model has {logits.shape[-1]} outputs but the metadata lists "
            f"{len(metadata.labels)} labels (+1 for no logo)"
        )
    if boxes.shape != (1, 4):
        raise ModelError(f"{model_dir}: the box output has shape {boxes.shape}, expected (1, 4)")
