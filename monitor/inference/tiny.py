"""A tiny model directory for fast tests of the whole pipeline (seconds, no ImageNet weights).

The directory has exactly the real format (``monitor.inference.model_dir``), so everything that
loads a trained model loads this one the same way; only the network is two small convolutions with
random weights, so its answers are arbitrary but deterministic for a given seed and picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitor.inference.model_dir import (
    CURVE_FILE,
    METRICS_FILE,
    MODEL_FILE,
    VERIFIER_FILE,
    InferenceSettings,
    ModelMetadata,
    new_version,
    utc_timestamp,
    write_json,
    write_metadata,
)
from monitor.inference.verification import VerifierSettings

TINY_INPUT_SIZE = 32


def write_tiny_model(
    out_dir: Path,
    *,
    labels: Sequence[str],
    seed: int = 0,
    no_logo_threshold: float = 0.5,
    inference: InferenceSettings | None = None,
    knows_no_logo: bool = True,
) -> Path:
    """Write a model directory with a tiny random-weight network and return its path.

    ``no_logo_threshold`` 0.0 makes every window name a brand, 1.0 (nearly) never: tests choose.
    By default the tiny model looks at the whole picture only (one window), so it reports at most
    one detection per picture; pass ``inference`` to test the multi-scale path.
    ``knows_no_logo=False`` writes a model without a "no logo" answer, as training makes from a
    folder per class without logo-free pictures: it names a class for every picture.
    """
    labels = _checked_labels(labels)
    if not 0.0 <= no_logo_threshold <= 1.0:
        raise ValueError(f"no_logo_threshold must be in [0, 1], got {no_logo_threshold}")
    from monitor.inference._tensorflow import import_tensorflow

    import_tensorflow()
    from monitor.inference.network import build_tiny_model

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = build_tiny_model(num_outputs=len(labels) + 1, image_size=TINY_INPUT_SIZE, seed=seed)
    _write_directory(
        out_dir,
        model,
        _tiny_metadata(
            labels,
            seed,
            input_size=TINY_INPUT_SIZE,
            no_logo_threshold=no_logo_threshold,
            inference=inference or InferenceSettings(grids=(1,), min_window_side=16),
            knows_no_logo=knows_no_logo,
        ),
    )
    return out_dir


def _tiny_metadata(labels: Sequence[str], seed: int, **fields: Any) -> ModelMetadata:
    """Metadata of a tiny random-weight model: nothing trained, the given fields set."""
    return ModelMetadata(
        version=new_version(),
        labels=tuple(labels),
        temperature=1.0,
        backbone="tiny",
        backbone_weights=f"random (seed {seed})",
        created_at=utc_timestamp(),
        training_seconds=0.0,
        **fields,
    )


def _write_directory(out_dir: Path, model: Any, metadata: ModelMetadata) -> None:
    """The model, its metadata, a note for metrics and a blank curve: a complete directory."""
    model.save(out_dir / MODEL_FILE)
    write_metadata(out_dir, metadata)
    write_json(out_dir / METRICS_FILE, {"note": "tiny random-weight model; nothing was trained"})
    _write_blank_curve(out_dir / CURVE_FILE)


TINY_DETECTOR_INPUT_SIZE = 64


def write_tiny_detector(
    out_dir: Path,
    *,
    labels: Sequence[str],
    seed: int = 0,
    threshold: float = 0.5,
    knows_no_logo: bool = True,
    verifier: VerifierSettings | None = None,
) -> Path:
    """Write a one-pass detector model directory with random weights and return its path.

    The same format ``monitor train`` writes for a dataset with boxes (architecture "detector"):
    a few strided convolutions under the real pyramid and head, on 64-pixel letterboxed input.
    ``threshold`` applies to its peak scores (identity calibration). With ``verifier`` settings
    a tiny window model is written as its second look (``verifier.keras``).
    """
    labels = _checked_labels(labels)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    from monitor.inference._tensorflow import import_tensorflow

    import_tensorflow()
    from monitor.inference.detector import build_tiny_detector

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = build_tiny_detector(
        num_classes=len(labels), input_size=TINY_DETECTOR_INPUT_SIZE, seed=seed
    )
    _write_directory(
        out_dir,
        model,
        _tiny_metadata(
            labels,
            seed,
            input_size=TINY_DETECTOR_INPUT_SIZE,
            no_logo_threshold=threshold,
            knows_no_logo=knows_no_logo,
            architecture="detector",
            verifier=verifier,
        ),
    )
    if verifier is not None:
        from monitor.inference.network import build_tiny_model

        window_model = build_tiny_model(
            num_outputs=len(labels) + 1, image_size=verifier.input_size, seed=seed + 1
        )
        window_model.save(out_dir / VERIFIER_FILE)
    return out_dir


def _checked_labels(labels: Sequence[str]) -> list[str]:
    """Labels as a list, refusing an empty, blank or repeated one."""
    if isinstance(labels, str):
        raise ValueError("labels must be a sequence of names, not one string")
    listed = list(labels)
    if not listed or not all(isinstance(label, str) and label.strip() for label in listed):
        raise ValueError(f"labels must be non-empty names, got {listed!r}")
    if len(set(listed)) != len(listed):
        raise ValueError(f"labels must be unique, got {listed!r}")
    return listed


def _write_blank_curve(path: Path) -> None:
    """The training-curve image of a model that was not trained: empty axes, saying so."""
    from monitor.inference.plots import new_figure, save_figure

    figure, axes = new_figure(width=4, height=3)
    axes.set_title("tiny model: not trained")
    axes.set_xlabel("epoch")
    save_figure(figure, path)
