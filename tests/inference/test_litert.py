"""The detector's int8 LiteRT file: export, the runtime choice, and agreement with Keras."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from monitor.exceptions import ModelError
from monitor.inference.classifier import load_classifier
from monitor.inference.detection import LogoDetector
from monitor.inference.letterbox import letterbox
from monitor.inference.model_dir import LITERT_FILE, MODEL_FILE, read_metadata
from tests.inference.conftest import make_picture


@pytest.fixture(scope="module")
def int8_detector_dir(tiny_detector_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny detector with its int8 file, exported as training exports it."""
    import keras

    from monitor.inference.litert import export_int8

    model_dir = tmp_path_factory.mktemp("int8") / "model"
    shutil.copytree(tiny_detector_dir, model_dir)
    size = read_metadata(model_dir).input_size
    model = keras.saving.load_model(model_dir / MODEL_FILE)
    pictures = [letterbox(make_picture(120, 90, seed), size) for seed in range(24)]
    export_int8(model, input_size=size, representative=pictures, path=model_dir / LITERT_FILE)
    return model_dir


def test_the_int8_file_gives_what_the_float_model_gives(int8_detector_dir: Path) -> None:
    float_detector = load_classifier(int8_detector_dir, runtime="keras")
    int8_detector = load_classifier(int8_detector_dir, runtime="litert")
    assert isinstance(int8_detector, LogoDetector) and int8_detector.runtime == "litert"
    size = float_detector.metadata.input_size
    batch = np.stack([letterbox(make_picture(150, 100, seed), size) for seed in range(30, 36)])
    float_heat, float_box = float_detector._predict(batch)
    int8_heat, int8_box = int8_detector._predict(batch)
    assert int8_heat.shape == float_heat.shape and int8_box.shape == float_box.shape
    assert np.abs(int8_heat - float_heat).mean() < 0.02
    assert np.abs(int8_box - float_box).mean() < 0.1
    # the strongest cell keeps its score (the tiny head's large random weights magnify rounding)
    for float_map, int8_map in zip(float_heat, int8_heat, strict=True):
        strongest = np.unravel_index(float_map.argmax(), float_map.shape)
        assert abs(float(int8_map[strongest]) - float(float_map[strongest])) < 0.06
        assert abs(float(int8_map.max()) - float(float_map.max())) < 0.06


def test_auto_takes_the_int8_file_on_a_machine_without_gpu(int8_detector_dir: Path) -> None:
    import tensorflow as tf

    detector = load_classifier(int8_detector_dir)
    expected = "keras" if tf.config.list_physical_devices("GPU") else "litert"
    assert isinstance(detector, LogoDetector) and detector.runtime == expected
    pictures = [make_picture(160, 120, seed) for seed in range(3)]
    assert len(detector.classify(pictures)) == 3


def test_litert_without_the_file_says_so(tiny_detector_dir: Path, tiny_model_dir: Path) -> None:
    with pytest.raises(ModelError, match="no int8"):
        load_classifier(tiny_detector_dir, runtime="litert")
    with pytest.raises(ModelError, match="no int8"):
        load_classifier(tiny_model_dir, runtime="litert")
    with pytest.raises(ModelError, match="runtime"):
        load_classifier(tiny_detector_dir, runtime="onnx")


def test_a_corrupt_int8_file_is_a_model_error(int8_detector_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(int8_detector_dir, copy)
    (copy / LITERT_FILE).write_bytes(b"TFL3 but not really a model")
    with pytest.raises(ModelError, match="LiteRT"):
        load_classifier(copy, runtime="litert")


def test_a_float_program_gives_what_keras_gives_at_any_batch() -> None:
    import keras

    from monitor.inference.litert import float_program

    pixels = keras.Input((32, 32, 3))
    hidden = keras.layers.DepthwiseConv2D(3, padding="same")(pixels)
    small = keras.layers.Conv2D(5, 3, strides=2, padding="same", activation="relu")(hidden)
    model = keras.Model(pixels, {"full": hidden, "half": small})
    program = float_program(model, input_shape=(32, 32, 3))
    # training runs it on one thread beside TensorFlow's step, on every core alone
    on_two_threads = float_program(model, input_shape=(32, 32, 3), threads=2)
    rng = np.random.default_rng(4)
    for batch in (1, 3):
        inputs = rng.uniform(0, 255, (batch, 32, 32, 3)).astype(np.float32)
        expected = model(inputs)
        outputs = program(inputs)
        assert set(outputs) == {"full", "half"}
        for name in ("full", "half"):
            assert outputs[name].shape == tuple(expected[name].shape)
            np.testing.assert_allclose(
                outputs[name], np.asarray(expected[name]), rtol=1e-4, atol=1e-3
            )
            np.testing.assert_array_equal(on_two_threads(inputs)[name], outputs[name])
