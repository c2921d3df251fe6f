"""The one-pass detector at work: loading, classifying, thresholds, and refusing bad models."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.domain import Detection
from monitor.exceptions import ModelError
from monitor.inference.classifier import LogoClassifier, load_classifier
from monitor.inference.detection import LogoDetector, combined_candidates
from monitor.inference.model_dir import METADATA_FILE, read_metadata
from monitor.inference.tiny import write_tiny_detector
from monitor.inference.verification import IDENTITY_COMBINATION, LookedAgain, VerifierSettings
from monitor.inference.windows import scaled_box
from tests.inference.conftest import TINY_DETECTOR_THRESHOLD, TINY_LABELS, make_picture


def _check_well_formed(detections: list[Detection], size: tuple[int, int]) -> None:
    probabilities = [detection.probability for detection in detections]
    assert probabilities == sorted(probabilities, reverse=True)
    for detection in detections:
        assert detection.brand in TINY_LABELS
        assert 0.0 <= detection.probability <= 1.0
        assert detection.box is not None
        x1, y1, x2, y2 = detection.box
        assert 0 <= x1 < x2 <= size[0] and 0 <= y1 < y2 <= size[1]


def test_a_detector_directory_loads_as_a_detector(tiny_detector_dir: Path) -> None:
    detector = load_classifier(tiny_detector_dir)
    assert isinstance(detector, LogoDetector)
    assert detector.labels == list(TINY_LABELS)
    assert detector.version == read_metadata(tiny_detector_dir).version


def test_every_picture_gets_well_formed_detections_in_photo_pixels(
    tiny_detector_dir: Path,
) -> None:
    detector = load_classifier(tiny_detector_dir)
    pictures = [make_picture(160, 120, seed) for seed in range(6)] + [make_picture(31, 300, 9)]
    results = detector.classify(pictures)
    assert len(results) == len(pictures)
    for picture, detections in zip(pictures, results, strict=True):
        _check_well_formed(detections, picture.size)
    assert any(results) and not all(results)  # the tiny detector answers some, not all
    assert detector.classify(pictures) == results
    assert detector.classify([]) == []


def test_a_lower_threshold_keeps_every_detection_of_the_higher_one(
    tiny_detector_dir: Path,
) -> None:
    detector = load_classifier(tiny_detector_dir)
    pictures = [make_picture(200, 150, seed) for seed in range(6)]
    strict = detector.classify(pictures)
    loose = detector.classify(pictures, threshold=0.05)
    for few, many in zip(strict, loose, strict=True):
        assert few == [
            detection for detection in many if detection.probability >= TINY_DETECTOR_THRESHOLD
        ]
        assert len(many) >= len(few)


def test_a_closed_set_detector_names_one_brand_per_picture(tmp_path: Path) -> None:
    model_dir = write_tiny_detector(tmp_path / "model", labels=TINY_LABELS, knows_no_logo=False)
    detector = load_classifier(model_dir)
    results = detector.classify([make_picture(120, 90, seed) for seed in range(4)])
    assert [len(found) for found in results] == [1, 1, 1, 1]


def test_old_window_models_still_load_as_window_classifiers(tiny_model_dir: Path) -> None:
    metadata = json.loads((tiny_model_dir / METADATA_FILE).read_text())
    assert "architecture" not in metadata or metadata["architecture"] == "windows"
    assert isinstance(load_classifier(tiny_model_dir), LogoClassifier)


def _copy_with_metadata(model_dir: Path, target: Path, **changes: object) -> Path:
    """A copy of a model directory whose metadata has ``changes``."""
    shutil.copytree(model_dir, target)
    metadata = json.loads((target / METADATA_FILE).read_text())
    (target / METADATA_FILE).write_text(json.dumps({**metadata, **changes}))
    return target


def test_an_unknown_architecture_says_to_retrain(tiny_detector_dir: Path, tmp_path: Path) -> None:
    copy = _copy_with_metadata(tiny_detector_dir, tmp_path / "model", architecture="transformer")
    with pytest.raises(ModelError, match="retrain"):
        load_classifier(copy)


def test_a_window_network_under_detector_metadata_is_refused(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    copy = _copy_with_metadata(tiny_model_dir, tmp_path / "model", architecture="detector")
    with pytest.raises(ModelError, match="detector"):
        load_classifier(copy)


def test_labels_not_matching_the_detector_are_a_model_error(
    tiny_detector_dir: Path, tmp_path: Path
) -> None:
    copy = _copy_with_metadata(tiny_detector_dir, tmp_path / "model", labels=["only", "two"])
    with pytest.raises(ModelError, match="labels"):
        load_classifier(copy)


def test_serving_a_detector_imports_no_training_code(tiny_detector_dir: Path) -> None:
    code = (
        "import sys; from monitor.inference.classifier import load_classifier;"
        f"load_classifier({str(tiny_detector_dir)!r});"
        "print([name for name in sys.modules if name.startswith('monitor.inference.training')"
        " or name in ('monitor.inference.views', 'monitor.inference.detector')])"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip().splitlines()[-1] == "[]"


def test_box_scale_widens_every_box_about_its_centre(
    tiny_detector_dir: Path, tmp_path: Path
) -> None:
    pictures = [make_picture(200, 150, seed) for seed in range(6)]
    plain = load_classifier(tiny_detector_dir).classify(pictures, threshold=0.05)
    wider_dir = _copy_with_metadata(tiny_detector_dir, tmp_path / "model", box_scale=1.5)
    wider = load_classifier(wider_dir).classify(pictures, threshold=0.05)
    assert any(plain)
    for picture, before, after in zip(pictures, plain, wider, strict=True):
        _check_well_formed(after, picture.size)
        if before:  # the most probable candidate is the same logo, its box widened
            assert before[0].box is not None and after[0].brand == before[0].brand
            assert after[0].box == scaled_box(before[0].box, 1.5, picture.size)


def test_a_box_scale_out_of_range_is_a_model_error(tiny_detector_dir: Path, tmp_path: Path) -> None:
    copy = _copy_with_metadata(tiny_detector_dir, tmp_path / "model", box_scale=5.0)
    with pytest.raises(ModelError, match="box_scale"):
        load_classifier(copy)


def test_a_part_of_a_more_probable_logo_of_its_brand_is_dropped() -> None:
    settings = VerifierSettings(combination=IDENTITY_COMBINATION)
    looked = [
        LookedAgain(
            box=(100, 100, 300, 200), detector_score=0.9, brand="acme", logo_probability=0.9
        ),
        # the word of the same mark: inside the first box
        LookedAgain(
            box=(110, 120, 180, 180), detector_score=0.8, brand="acme", logo_probability=0.8
        ),
        # a second acme logo elsewhere, and another brand over the first
        LookedAgain(
            box=(400, 100, 500, 200), detector_score=0.7, brand="acme", logo_probability=0.7
        ),
        LookedAgain(
            box=(120, 110, 200, 190), detector_score=0.6, brand="bolt", logo_probability=0.6
        ),
    ]
    kept = combined_candidates(looked, settings, nms_iou=0.5).detections
    assert [(d.brand, d.box) for d in kept] == [
        ("acme", (100, 100, 300, 200)),
        ("acme", (400, 100, 500, 200)),
        ("bolt", (120, 110, 200, 190)),
    ]
