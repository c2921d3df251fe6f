"""The detector (and its verifier) as LiteRT (TFLite) int8 files, for CPU workers: export, run.

Training also runs the frozen part of the backbone as a float32 LiteRT program
(``float_program``): the same arithmetic as TensorFlow's, to rounding, faster on a CPU.

Training writes ``model_int8.tflite`` beside ``model.keras``: the same network, weights and
activations quantized to 8 bits after training, calibrated on validation photos as serving sees
them, with TensorFlow's converter; serving runs it with LiteRT's runtime (``ai-edge-litert``),
which needs no TensorFlow. Its input is the letterboxed photo as uint8, exactly the pixels serving has, so the input
loses nothing to quantization; its outputs stay float32 (``heatmap``, ``box``), so the code that
reads them is the same for both runtimes. Both import lazily, inside the functions.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from monitor.exceptions import ModelError
from monitor.inference.model_dir import BOX_OUTPUT, HEATMAP_OUTPUT, LOGITS_OUTPUT

INPUT_NAME = "pixels"


def export_int8(
    model: Any, *, input_size: int, representative: Iterable[np.ndarray], path: Path
) -> None:
    """Write ``model`` as a full-integer LiteRT file at ``path`` (atomically).

    ``representative`` gives letterboxed photos (size, size, 3), 0-255: the converter measures
    each layer's range on them, so they should be real photos like those served.
    """
    samples = [np.asarray(sample, dtype=np.float32)[None] for sample in representative]
    if not samples:
        raise ValueError("int8 export needs representative photos to measure ranges on")

    def quantize(converter: Any, tensorflow: Any) -> None:
        converter.optimizations = [tensorflow.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([sample] for sample in samples)
        converter.target_spec.supported_ops = [tensorflow.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tensorflow.uint8

    data = _converted(model, input_shape=(input_size, input_size, 3), quantize=quantize)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def float_program(
    model: Any, *, input_shape: tuple[int, ...], threads: int | None = None
) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """``model`` (float32 in, a dict of float32 outputs) as a float32 LiteRT program on the CPU.

    Nothing is quantized: LiteRT's CPU kernels (XNNPACK) run MobileNetV2's depthwise
    convolutions faster than TensorFlow's on a few cores (``bench/lower_backbone.py`` measures
    it). ``input_shape`` leaves out the batch, which may differ from call to call. The function is not thread-safe: call it from
    one thread at a time.
    """
    from ai_edge_litert.interpreter import Interpreter

    data = _converted(model, input_shape=input_shape, quantize=None)
    interpreter = Interpreter(model_content=data, num_threads=threads)
    (name,) = interpreter.get_signature_list()
    runner = interpreter.get_signature_runner(name)

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        outputs = runner(**{INPUT_NAME: np.asarray(batch, dtype=np.float32)})
        return {key: np.array(value) for key, value in outputs.items()}

    return run


def _converted(
    model: Any, *, input_shape: tuple[int, ...], quantize: Callable[[Any, Any], None] | None
) -> bytes:
    """The LiteRT flatbuffer of ``model``.

    ``quantize(converter, tensorflow)`` sets up the converter's quantization; without it the
    program stays float32 and its batch is left open.
    """
    from monitor.inference._tensorflow import import_tensorflow

    tensorflow = import_tensorflow()
    from keras import export as keras_export

    with tempfile.TemporaryDirectory() as saved_model:
        archive = keras_export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serve",
            functools.partial(model.__call__, training=False),
            input_signature=[
                tensorflow.TensorSpec(
                    (None if quantize is None else 1, *input_shape),
                    tensorflow.float32,
                    name=INPUT_NAME,
                )
            ],
        )
        archive.write_out(saved_model, verbose=False)
        converter = tensorflow.lite.TFLiteConverter.from_saved_model(saved_model)
        if quantize is not None:
            quantize(converter, tensorflow)
        return bytes(converter.convert())


class LiteRTModel:
    """A LiteRT file, run one picture at a time (its input has a batch of one).

    ``first_output`` names the output given beside ``box``: the detector's ``heatmap`` or the
    window classifier's ``logits``.
    """

    first_output = HEATMAP_OUTPUT
    kind = "detector"

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        # LiteRT's own runtime: TensorFlow's copy of the interpreter is deprecated.
        from ai_edge_litert.interpreter import Interpreter

        try:
            # From bytes, not a path: the interpreter checks bytes before using them, while a
            # truncated file opened by path can crash the process instead of raising.
            interpreter = Interpreter(model_content=path.read_bytes(), num_threads=threads)
            interpreter.allocate_tensors()
            signatures = interpreter.get_signature_list()
            (name,) = signatures
            self._runner = interpreter.get_signature_runner(name)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load the LiteRT model {path}: {exc}") from exc
        outputs = set(signatures[name]["outputs"])
        if {self.first_output, BOX_OUTPUT} - outputs or signatures[name]["inputs"] != [INPUT_NAME]:
            raise ModelError(
                f"{path} is not a {self.kind} file: it has inputs {signatures[name]['inputs']} "
                f"and outputs {sorted(outputs)} (retrain the model with monitor train)"
            )

    def predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two outputs of a batch of pictures, as the Keras model gives them."""
        firsts: list[np.ndarray] = []
        boxes: list[np.ndarray] = []
        for pixels in np.asarray(batch, dtype=np.uint8):
            outputs = self._runner(**{INPUT_NAME: pixels[None]})
            firsts.append(outputs[self.first_output][0])
            boxes.append(outputs[BOX_OUTPUT][0])
        return np.stack(firsts), np.stack(boxes)


class LiteRTDetector(LiteRTModel):
    """The detector's int8 file: letterboxed photos in, heatmaps and box maps out."""


class LiteRTWindows(LiteRTModel):
    """A window classifier's int8 file (a detector's verifier): windows in, logits and boxes out."""

    first_output = LOGITS_OUTPUT
    kind = "window classifier"
