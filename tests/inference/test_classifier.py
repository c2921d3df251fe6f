"""Loading model directories and classifying with the tiny model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monitor.domain import Detection
from monitor.exceptions import ModelError
from monitor.inference.classifier import LogoClassifier, load_classifier
from monitor.inference.model_dir import (
    METADATA_FILE,
    MODEL_FILE,
    InferenceSettings,
    read_metadata,
)
from monitor.inference.tiny import write_tiny_model
from tests.inference.conftest import TINY_LABELS, make_picture


def _check_well_formed(detections: list[Detection], size: tuple[int, int]) -> None:
    width, height = size
    probabilities = [detection.probability for detection in detections]
    assert probabilities == sorted(probabilities, reverse=True)
    for detection in detections:
        assert detection.brand in TINY_LABELS
        assert 0.0 <= detection.probability <= 1.0
        assert detection.box is not None
        x1, y1, x2, y2 = detection.box
        assert 0 <= x1 < x2 <= width
        assert 0 <= y1 < y2 <= height


def test_round_trip_gives_one_well_formed_list_per_image(
    tiny_classifier: LogoClassifier, tiny_model_dir: Path
) -> None:
    pictures = [make_picture(160, 120, seed) for seed in range(4)] + [make_picture(31, 300, 9)]
    results = tiny_classifier.classify(pictures)
    assert len(results) == len(pictures)
    for picture, detections in zip(pictures, results, strict=True):
        _check_well_formed(detections, picture.size)
    assert tiny_classifier.labels == list(TINY_LABELS)
    assert tiny_classifier.version == read_metadata(tiny_model_dir).version


def test_classify_is_deterministic_and_accepts_other_modes(tiny_classifier: LogoClassifier) -> None:
    picture = make_picture(200, 150, seed=1)
    first = tiny_classifier.classify([picture])
    assert tiny_classifier.classify([picture]) == first
    (grey,) = tiny_classifier.classify([picture.convert("L")])
    _check_well_formed(grey, picture.size)


def test_empty_input_gives_empty_output(tiny_classifier: LogoClassifier) -> None:
    assert tiny_classifier.classify([]) == []


def test_multiscale_model_finds_one_detection_per_distinct_place(
    multiscale_model_dir: Path,
) -> None:
    classifier = load_classifier(multiscale_model_dir)
    picture = make_picture(300, 240, seed=2)
    (detections,) = classifier.classify([picture])
    _check_well_formed(detections, picture.size)
    assert 1 <= len(detections) <= 1 + 4 + 9
    (single,) = classifier.classify([picture], grids=(1,))
    assert len(single) == 1


def test_threshold_one_means_no_logo(tmp_path: Path) -> None:
    model_dir = write_tiny_model(tmp_path / "m", labels=["a", "b"], no_logo_threshold=1.0)
    results = load_classifier(model_dir).classify([make_picture(seed=seed) for seed in range(3)])
    assert results == [[], [], []]


def test_a_model_without_a_no_logo_answer_names_a_class_for_every_picture(
    tmp_path: Path,
) -> None:
    # A threshold of 1.0 would mean "never a logo" for a model that knows "no logo"; a closed-set
    # model has no such answer and names one class per picture, multi-scale or not.
    inference = InferenceSettings(grids=(1, 2, 3), min_window_side=16)
    model_dir = write_tiny_model(
        tmp_path / "m",
        labels=["a", "b"],
        no_logo_threshold=1.0,
        knows_no_logo=False,
        inference=inference,
    )
    classifier = load_classifier(model_dir)
    assert classifier.metadata.knows_no_logo is False
    pictures = [make_picture(160, 120, seed=seed) for seed in range(5)]
    results = classifier.classify(pictures)
    assert [len(detections) for detections in results] == [1] * 5
    for picture, detections, predictions in zip(
        pictures, results, classifier.analyse(pictures), strict=True
    ):
        (detection,) = detections
        brands = predictions.probabilities[:, :2]
        among = brands / brands.sum(axis=1, keepdims=True)
        assert detection.probability == pytest.approx(among.max())
        assert detection.brand == ["a", "b"][int(np.argmax(among.max(axis=0)))]
        assert detection.box is not None
        assert 0 <= detection.box[0] < detection.box[2] <= picture.size[0]


def test_metadata_without_knows_no_logo_is_a_model_that_knows_it(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    older = _copy(tiny_model_dir, tmp_path)
    data = json.loads((older / METADATA_FILE).read_text())
    del data["knows_no_logo"]
    (older / METADATA_FILE).write_text(json.dumps(data))
    assert read_metadata(older).knows_no_logo is True


def test_importing_the_classifier_does_not_import_tensorflow() -> None:
    code = (
        "import sys, monitor.inference, monitor.inference.classifier, monitor.inference.tiny;"
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "False"


def test_serving_a_model_imports_no_training_code(tiny_model_dir: Path) -> None:
    code = (
        "import sys; from monitor.inference.classifier import load_classifier;"
        f"load_classifier({str(tiny_model_dir)!r});"
        "print(sorted(m for m in sys.modules if m.startswith('monitor.inference.training')))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip().splitlines()[-1] == "[]"


def test_missing_directory_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_classifier(tmp_path / "nowhere")


def test_directory_without_metadata_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"metadata\.json is missing"):
        load_classifier(tmp_path)


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(model_dir, target)
    return target


def test_missing_model_file_is_a_model_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = _copy(tiny_model_dir, tmp_path)
    (broken / MODEL_FILE).unlink()
    with pytest.raises(ModelError, match=r"model\.keras is missing"):
        load_classifier(broken)


def test_corrupt_model_file_is_a_model_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = _copy(tiny_model_dir, tmp_path)
    (broken / MODEL_FILE).write_bytes(b"not a keras archive")
    with pytest.raises(ModelError, match="cannot load"):
        load_classifier(broken)


def _edit_metadata(model_dir: Path, **changes: object) -> None:
    path = model_dir / METADATA_FILE
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_labels_not_matching_the_network_are_a_model_error(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    broken = _copy(tiny_model_dir, tmp_path)
    _edit_metadata(broken, labels=["only", "two"])
    with pytest.raises(ModelError, match="has 4 outputs but the metadata lists 2 labels"):
        load_classifier(broken)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": 99}, "format version 99"),
        ({"format": "something-else"}, "is not monitor-logo-model metadata"),
        ({"labels": []}, "labels must be a non-empty list"),
        ({"labels": ["a", "a", "b"]}, "labels must be unique"),
        ({"temperature": -1.0}, "temperature must be positive"),
        ({"no_logo_threshold": 2}, r"no_logo_threshold must be in \[0, 1\]"),
        ({"input_size": "big"}, "field 'input_size' has the wrong type"),
        ({"inference": {"grids": [0]}}, "invalid inference settings"),
        ({"knows_no_logo": "no"}, "'knows_no_logo' must be true or false"),
    ],
)
def test_bad_metadata_is_a_model_error(
    tiny_model_dir: Path, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    broken = _copy(tiny_model_dir, tmp_path)
    _edit_metadata(broken, **changes)
    with pytest.raises(ModelError, match=message):
        load_classifier(broken)


def test_unreadable_metadata_is_a_model_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = _copy(tiny_model_dir, tmp_path)
    (broken / METADATA_FILE).write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        load_classifier(broken)


def test_tiny_model_refuses_bad_labels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unique"):
        write_tiny_model(tmp_path, labels=["a", "a"])
    with pytest.raises(ValueError, match="not one string"):
        write_tiny_model(tmp_path, labels="abc")


def test_tiny_model_versions_are_unique(tmp_path: Path) -> None:
    first = read_metadata(write_tiny_model(tmp_path / "one", labels=["a"]))
    second = read_metadata(write_tiny_model(tmp_path / "two", labels=["a"]))
    assert first.version != second.version
