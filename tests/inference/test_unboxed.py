"""Photos whose boxes miss logos: listed by the dataset or known here, never cut into negatives."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from monitor.exceptions import DatasetError
from monitor.inference.datasets import (
    LogoBox,
    background_regions,
    held_out_negatives,
    read_dataset,
)
from monitor.inference.training import TrainOptions
from monitor.inference.training.data import prepare_data, validation_negatives
from monitor.inference.unboxed import (
    FLICKR_LOGOS_27_ANNOTATIONS_SHA256,
    FLICKR_LOGOS_27_UNBOXED,
    UNBOXED_LOGOS_FILE,
    checked_additions,
    unboxed_logos,
    unboxed_photo_names,
    with_added_boxes,
    with_unboxed_logos,
)
from tests.inference.factories import write_flickr_dataset

SHARED_FLICKR = Path(__file__).resolve().parents[2].parent / "shared/datasets/flickr_logos_27"


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    return write_flickr_dataset(tmp_path / "set", photos_per_brand=4, size=(320, 240))


def test_the_datasets_own_list_marks_its_photos(dataset_dir: Path) -> None:
    (dataset_dir / UNBOXED_LOGOS_FILE).write_text(
        "# a second can behind the boxed one\nimages/0001.jpg\n\n  images/1002.jpg  # a sign\n"
    )
    names = unboxed_photo_names(dataset_dir)
    assert names == {"images/0001.jpg", "images/1002.jpg"}
    dataset = with_unboxed_logos(read_dataset(dataset_dir), names)
    marked = {photo.name for photo in dataset.photos if photo.unboxed_logos}
    assert marked == names
    assert all(photo.boxes for photo in dataset.photos)  # the boxes still teach where logos are


def test_no_logo_free_region_is_cut_from_a_photo_with_unboxed_logos(dataset_dir: Path) -> None:
    dataset = read_dataset(dataset_dir)
    photo = dataset.photos[0]
    rng = np.random.default_rng(0)
    assert background_regions(photo, count=3, rng=rng)
    names = frozenset(p.name for p in dataset.photos[:6])
    marked = with_unboxed_logos(dataset, names)
    assert background_regions(marked.photos[0], count=3, rng=rng) == []
    regions = held_out_negatives(list(marked.photos), count=40, seed=0)
    assert regions and not any(region_photo.name in names for region_photo, _ in regions)


def test_training_reads_the_list_unless_told_not_to(dataset_dir: Path) -> None:
    listed = sorted(photo.name for photo in read_dataset(dataset_dir).photos)[::2]
    (dataset_dir / UNBOXED_LOGOS_FILE).write_text("\n".join(listed) + "\n")
    options = TrainOptions(validation_fraction=0.34, test_fraction=0.0, seed=3)
    prepared = prepare_data(dataset_dir, options)
    negatives = validation_negatives(prepared.validation_photos, seed=3)
    assert negatives and not any(photo.name in listed for photo, _ in negatives)
    assert any(photo.unboxed_logos for photo in prepared.train_photos)
    ignored = prepare_data(dataset_dir, replace(options, unboxed_logo_lists=False))
    assert not any(photo.unboxed_logos for photo in ignored.train_photos)
    assert any(
        photo.name in listed for photo, _ in validation_negatives(ignored.validation_photos, seed=3)
    )


def test_a_boxed_line_adds_its_logo_to_training_photos_only(dataset_dir: Path) -> None:
    photos = sorted(photo.name for photo in read_dataset(dataset_dir).photos)
    (dataset_dir / UNBOXED_LOGOS_FILE).write_text(
        "".join(f"{name} globex 250 150 300 200  # a sign behind\n" for name in photos)
    )
    listed = unboxed_logos(dataset_dir)
    assert listed.photos == set(photos)
    assert len(listed.added) == len(photos)
    options = TrainOptions(
        validation_fraction=0.34, test_fraction=0.0, seed=3, added_logo_boxes=True
    )
    prepared = prepare_data(dataset_dir, options)
    for photo in prepared.train_photos:
        assert photo.boxes[-1].box == (250, 150, 300, 200)
        assert "globex" in photo.brands and photo.unboxed_logos
    original = read_dataset(dataset_dir).by_name()
    for photo in prepared.validation_photos:  # validation keeps the annotations' boxes
        assert photo.boxes == original[photo.name].boxes
    # the split is the one made without the added boxes
    plain = prepare_data(dataset_dir, replace(options, unboxed_logo_lists=False))
    assert [p.name for p in plain.train_photos] == [p.name for p in prepared.train_photos]
    assert all(len(p.boxes) == 1 for p in plain.train_photos)
    # off by default: the photos stay listed, their boxes the annotations'
    default = prepare_data(dataset_dir, replace(options, added_logo_boxes=False))
    assert all(len(p.boxes) == 1 and p.unboxed_logos for p in default.train_photos)


def test_an_added_box_is_clipped_to_its_photo(dataset_dir: Path) -> None:
    dataset = read_dataset(dataset_dir)
    photo = dataset.photos[0]
    additions = checked_additions(dataset, [(photo.name, LogoBox("acme", (100, 100, 500, 500)))])
    (added,) = with_added_boxes([photo], additions)
    assert added.boxes[-1] == LogoBox("acme", (100, 100, *photo.size))


def test_added_boxes_may_train_without_their_extents(dataset_dir: Path) -> None:
    dataset = read_dataset(dataset_dir)
    photo = dataset.photos[0]
    additions = checked_additions(dataset, [(photo.name, LogoBox("acme", (10, 10, 50, 50)))])
    (added,) = with_added_boxes([photo], additions, extents=False)
    assert [logo.extent_known for logo in added.boxes] == [True] * len(photo.boxes) + [False]
    # a box the annotations already hold is not added again, and keeps its extent
    again = checked_additions(dataset, [(photo.name, photo.boxes[0])] * 2)
    (same,) = with_added_boxes([photo], again, extents=False)
    assert same.boxes == photo.boxes


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("images/0001.jpg pepsi 1 1 20 20", "brand 'pepsi'"),
        ("images/0001.jpg acme 400 300 500 400", "no area inside its 320x240 photo"),
        ("images/0001.jpg acme 1 1 20", "expected 'PHOTO' or 'PHOTO BRAND X1 Y1 X2 Y2'"),
        ("images/0001.jpg acme 1 1 20 2x", "corners must be integers"),
        ("images/9999.jpg acme 1 1 20 20", "(e.g. images/9999.jpg)"),
    ],
)
def test_a_wrong_added_box_is_a_dataset_error(dataset_dir: Path, line: str, message: str) -> None:
    (dataset_dir / UNBOXED_LOGOS_FILE).write_text(f"images/1002.jpg\n{line}\n")
    options = TrainOptions(validation_fraction=0.34, test_fraction=0.0, seed=3)
    with pytest.raises(DatasetError, match=re.escape(message)):
        prepare_data(dataset_dir, options)


def test_a_listed_photo_the_dataset_lacks_is_a_dataset_error(dataset_dir: Path) -> None:
    (dataset_dir / UNBOXED_LOGOS_FILE).write_text("images/0001.jpg\nimages/missing.jpg\n")
    with pytest.raises(DatasetError, match=r"1 photos listed .*missing\.jpg"):
        with_unboxed_logos(read_dataset(dataset_dir), unboxed_photo_names(dataset_dir))


def test_an_unreadable_list_is_a_dataset_error(dataset_dir: Path) -> None:
    (dataset_dir / UNBOXED_LOGOS_FILE).write_bytes(b"\xff\xfe\x00images")
    with pytest.raises(DatasetError, match=UNBOXED_LOGOS_FILE):
        unboxed_photo_names(dataset_dir)


def test_the_known_list_applies_only_to_the_annotations_it_was_made_for(dataset_dir: Path) -> None:
    assert unboxed_photo_names(dataset_dir) == frozenset()
    digest = hashlib.sha256((dataset_dir / "annotations.txt").read_bytes()).hexdigest()
    assert digest != FLICKR_LOGOS_27_ANNOTATIONS_SHA256


@pytest.mark.skipif(not SHARED_FLICKR.is_dir(), reason="needs ../shared/datasets/flickr_logos_27")
def test_the_flickr_logos_27_list_names_photos_of_that_dataset() -> None:
    names = unboxed_photo_names(SHARED_FLICKR)
    assert names == FLICKR_LOGOS_27_UNBOXED
    dataset = with_unboxed_logos(read_dataset(SHARED_FLICKR), names)
    assert sum(photo.unboxed_logos for photo in dataset.photos) == len(names)
