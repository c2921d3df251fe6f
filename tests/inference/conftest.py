"""Fixtures for inference tests: tiny model directories and small pictures, built per test session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monitor.inference.classifier import LogoClassifier, load_classifier
from monitor.inference.model_dir import InferenceSettings
from monitor.inference.tiny import write_tiny_model

TINY_LABELS = ("acme", "globex", "initech")
TINY_DETECTOR_THRESHOLD = 0.37
"""Inside the range of the tiny detector's (seed 3) best scores on random pictures, 0.28-0.42."""


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model that looks at the whole picture only (its default)."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "model", labels=TINY_LABELS, seed=3)


@pytest.fixture(scope="session")
def multiscale_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model that answers for every window, looking at three grids."""
    return write_tiny_model(
        tmp_path_factory.mktemp("tiny-multi") / "model",
        labels=TINY_LABELS,
        seed=5,
        no_logo_threshold=0.0,
        inference=InferenceSettings(grids=(1, 2, 3), min_window_side=16),
    )


@pytest.fixture(scope="session")
def tiny_classifier(tiny_model_dir: Path) -> LogoClassifier:
    return load_classifier(tiny_model_dir)


def make_picture(width: int = 160, height: int = 120, seed: int = 0) -> Image.Image:
    """A random RGB picture of the given size."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture(scope="session")
def tiny_detector_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny one-pass detector (random weights), the format training writes for boxed datasets."""
    from monitor.inference.tiny import write_tiny_detector

    return write_tiny_detector(
        tmp_path_factory.mktemp("tiny-detector") / "model",
        labels=TINY_LABELS,
        seed=3,
        threshold=TINY_DETECTOR_THRESHOLD,
    )
