"""Evaluation: the metrics on a hand-made case, and a whole run with the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from monitor.domain import Detection
from monitor.exceptions import DatasetError
from monitor.inference.datasets import LogoBox, read_dataset, split_by_photo
from monitor.inference.evaluation import (
    NO_LOGO,
    Truth,
    evaluate_model,
    mean_average_precision,
    score_answers,
)
from monitor.inference.model_dir import SPLIT_FILE
from monitor.inference.tiny import write_tiny_model
from tests.inference.factories import write_brand_folders, write_flickr_dataset

LABELS = ["acme", "globex"]


def _hand_made() -> tuple[list[Truth], list[list[Detection]]]:
    acme_box = LogoBox("acme", (0, 0, 100, 100))
    truths = [
        Truth(("acme",), (acme_box,)),  # right, box IoU 0.81
        Truth(("acme",), (acme_box,)),  # answered globex: wrong brand
        Truth(("globex",)),  # right, no box annotated
        Truth(("globex",)),  # missed: no logo
        Truth(()),  # right: no logo
        Truth(()),  # false positive
        Truth(()),  # right
        Truth(("acme", "globex"), (acme_box,)),  # either brand is right; box IoU 0.25
    ]
    answers = [
        [Detection("acme", 0.9, (0, 0, 90, 90))],
        [Detection("globex", 0.6, (0, 0, 100, 100))],
        [Detection("globex", 0.8, None)],
        [],
        [],
        [Detection("acme", 0.55, (5, 5, 50, 50))],
        [],
        [Detection("acme", 0.7, (50, 50, 150, 150)), Detection("globex", 0.5, None)],
    ]
    return truths, answers


def test_scores_by_hand() -> None:
    truths, answers = _hand_made()
    scores = score_answers(LABELS, truths, answers)
    assert scores.logo_images == 5 and scores.no_logo_images == 3
    assert scores.accuracy == pytest.approx(5 / 8)  # 3 logo photos + 2 logo-free right
    assert scores.brand_accuracy == pytest.approx(3 / 5)
    assert scores.no_logo_false_positive_rate == pytest.approx(round(1 / 3, 4))
    assert scores.missed_logo_rate == pytest.approx(1 / 5)
    # found logos with an annotated box: photo 1 (hit) and photo 8's acme (miss).
    assert scores.found_logos_with_box == 2
    assert scores.box_iou50_share == pytest.approx(0.5)
    acme, globex = scores.per_brand["acme"], scores.per_brand["globex"]
    assert (acme.support, acme.answered) == (3, 3)
    assert acme.precision == pytest.approx(round(2 / 3, 4))
    assert acme.recall == pytest.approx(round(2 / 3, 4))
    assert (globex.support, globex.answered) == (2, 2)
    assert globex.precision == pytest.approx(0.5) and globex.recall == pytest.approx(0.5)
    names = scores.confusion_labels
    assert names == ["acme", "globex", NO_LOGO]
    assert scores.confusion[names.index(NO_LOGO), names.index("acme")] == 1
    assert scores.confusion.sum() == 8


def test_mean_average_precision_by_hand() -> None:
    acme = LogoBox("acme", (0, 0, 100, 100))
    globex = LogoBox("globex", (200, 200, 300, 300))
    truths = [Truth(("acme",), (acme,)), Truth(("acme", "globex"), (acme, globex)), Truth(())]
    candidates = [
        [Detection("acme", 0.9, (0, 0, 95, 95))],  # hit
        [
            Detection("acme", 0.8, (0, 0, 100, 100)),  # hit
            Detection("acme", 0.7, (2, 2, 100, 100)),  # the same logo again: wrong
            Detection("globex", 0.3, (200, 200, 290, 300)),  # hit
        ],
        [Detection("globex", 0.6, (0, 0, 50, 50))],  # logo-free picture: wrong
    ]
    # acme: hits at ranks 1 and 2 of 2 logos -> AP 1.0; globex: a miss ranked first, then a hit
    # -> precision 0.5 at recall 1 -> AP 0.5
    assert mean_average_precision(LABELS, truths, candidates) == pytest.approx(0.75)


def test_mean_average_precision_needs_boxes() -> None:
    truths = [Truth(("acme",))]
    assert mean_average_precision(LABELS, truths, [[Detection("acme", 0.9, None)]]) is None


def test_scores_need_one_answer_per_truth() -> None:
    with pytest.raises(ValueError, match="same length"):
        score_answers(LABELS, [Truth(())], [])


@pytest.fixture(scope="module")
def flickr_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_flickr_dataset(tmp_path_factory.mktemp("flickr") / "set", brands=LABELS)


def test_evaluate_a_flickr_dataset_rebuilds_the_split(flickr_set: Path, tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "model", labels=LABELS, no_logo_threshold=0.0)
    progress: list[tuple[int, int]] = []
    report = evaluate_model(
        model_dir=model, dataset_dir=flickr_set, progress=lambda *step: progress.append(step)
    )
    dataset = read_dataset(flickr_set)
    split = split_by_photo(dataset.photos, validation_fraction=0.15, test_fraction=0.2, seed=0)
    assert report.logo_images == len(split.test) == 2
    assert report.no_logo_images == 2
    assert report.no_logo_false_positive_rate == 1.0  # threshold 0: every picture is a brand
    assert report.missed_logo_rate == 0.0
    assert report.photos_used == "test split (seed 0)"
    assert report.ece is not None and 0.0 <= report.ece <= 1.0
    assert Path(report.confusion_matrix_png or "").name == "confusion_matrix.png"
    assert Image.open(model / "confusion_matrix.png").format == "PNG"
    assert progress[-1] == (4, 4)
    assert json.loads(json.dumps(report.to_dict()))["per_brand"]["acme"]["support"] >= 0


def test_evaluate_uses_the_model_split_file(flickr_set: Path, tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "model", labels=LABELS, no_logo_threshold=1.0)
    dataset = read_dataset(flickr_set)
    names = [photo.name for photo in dataset.photos]
    split = {
        "dataset": str(flickr_set.resolve()),
        "layout": "flickr",
        "seed": 9,
        "validation_fraction": 0.0,
        "test_fraction": 0.5,
        "train": names[:7],
        "validation": [],
        "test": names[7:],
    }
    (model / SPLIT_FILE).write_text(json.dumps(split))
    report = evaluate_model(model_dir=model, dataset_dir=flickr_set, seed=9)
    assert report.logo_images == len(names) - 7
    assert report.photos_used == "test split (seed 9)"
    assert report.no_logo_false_positive_rate == 0.0 and report.missed_logo_rate == 1.0
    everything = evaluate_model(model_dir=model, dataset_dir=flickr_set, test_only=False)
    assert everything.logo_images == len(names)


def test_evaluate_a_folder_dataset_with_a_no_logo_folder(tmp_path: Path) -> None:
    root = write_brand_folders(tmp_path / "set", brands=LABELS, per_brand=2, no_logo_folder="none")
    model = write_tiny_model(tmp_path / "model", labels=LABELS)
    report = evaluate_model(
        model_dir=model,
        dataset_dir=root,
        no_logo_folder="none",
        confusion_matrix_path=tmp_path / "matrix.png",
    )
    assert (report.logo_images, report.no_logo_images) == (4, 2)
    assert report.box_iou50_share is None  # folder images have no annotated boxes
    assert (tmp_path / "matrix.png").is_file()


def test_a_closed_set_model_on_folders_without_logo_free_photos(tmp_path: Path) -> None:
    root = write_brand_folders(tmp_path / "set", brands=LABELS, per_brand=3)
    model = write_tiny_model(
        tmp_path / "model", labels=LABELS, no_logo_threshold=1.0, knows_no_logo=False
    )
    report = evaluate_model(model_dir=model, dataset_dir=root)
    assert (report.logo_images, report.no_logo_images) == (6, 0)
    assert report.missed_logo_rate == 0.0  # it names a class for every photo
    assert report.no_logo_false_positive_rate is None  # no logo-free picture to measure it on


def test_brands_the_model_does_not_know_are_refused(tmp_path: Path) -> None:
    root = write_brand_folders(tmp_path / "set", brands=["acme", "umbrella"], per_brand=1)
    model = write_tiny_model(tmp_path / "model", labels=LABELS)
    with pytest.raises(DatasetError, match="does not know: umbrella"):
        evaluate_model(model_dir=model, dataset_dir=root)


def test_truncated_pictures_are_listed_not_fatal(tmp_path: Path) -> None:
    root = write_brand_folders(tmp_path / "set", brands=LABELS, per_brand=2)
    broken = root / "acme" / "0.png"
    broken.write_bytes(broken.read_bytes()[:200])  # the header is intact, the pixels are not
    model = write_tiny_model(tmp_path / "model", labels=LABELS)
    report = evaluate_model(model_dir=model, dataset_dir=root)
    assert report.logo_images == 3
    (failure,) = report.failed_images
    assert "0.png" in failure and "truncated" in failure


def test_pictures_without_a_readable_header_stop_the_reading(tmp_path: Path) -> None:
    root = write_brand_folders(tmp_path / "set", brands=LABELS, per_brand=1)
    (root / "acme" / "0.png").write_bytes(b"not a picture")
    model = write_tiny_model(tmp_path / "model", labels=LABELS)
    with pytest.raises(DatasetError, match="cannot read image"):
        evaluate_model(model_dir=model, dataset_dir=root)
