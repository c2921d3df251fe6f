"""Reading datasets in both layouts, splitting by photo, logo-free regions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.exceptions import DatasetError
from monitor.inference.datasets import (
    LabeledPhoto,
    LogoBox,
    _clip_boxes,
    background_regions,
    grown_boxes,
    held_out_negatives,
    read_dataset,
    read_negative_photos,
    split_by_photo,
)
from monitor.inference.windows import intersection_area
from tests.inference.factories import draw_photo, write_brand_folders, write_flickr_dataset


def _flickr(root: Path, lines: list[str], sizes: dict[str, tuple[int, int]]) -> Path:
    (root / "images").mkdir(parents=True)
    for name, size in sizes.items():
        draw_photo(size, [], seed=1).save(root / "images" / name)
    (root / "annotations.txt").write_text("\n".join(lines) + "\n")
    return root


def test_flickr_boxes_are_deduplicated_clipped_and_degenerate_ones_skipped(tmp_path: Path) -> None:
    root = _flickr(
        tmp_path,
        [
            "a.jpg Acme 1 10 10 50 40",
            "a.jpg Acme 2 10 10 50 40",  # the same box under another subset
            "a.jpg Acme 3 60 10 60 40",  # no width
            "a.jpg Globex 1 90 70 150 130",  # runs off the 120 x 100 photo: clipped
            "b.jpg Acme 1 5 5 5 5",  # the only box of b.jpg is degenerate: b.jpg is left out
        ],
        {"a.jpg": (120, 100), "b.jpg": (120, 100)},
    )
    dataset = read_dataset(root)
    assert dataset.layout == "flickr"
    assert dataset.labels == ("Acme", "Globex")
    (photo,) = dataset.photos
    assert photo.name == "images/a.jpg"
    assert photo.size == (120, 100)
    assert photo.brands == ("Acme", "Globex")
    assert photo.boxes == (LogoBox("Acme", (10, 10, 50, 40)), LogoBox("Globex", (90, 70, 120, 100)))


def test_malformed_annotation_line_names_the_line(tmp_path: Path) -> None:
    root = _flickr(tmp_path, ["a.jpg Acme 1 10 10 50", ""], {"a.jpg": (60, 60)})
    with pytest.raises(DatasetError, match=r"annotations\.txt:1: expected"):
        read_dataset(root)


def test_non_numeric_box_is_refused(tmp_path: Path) -> None:
    root = _flickr(tmp_path, ["a.jpg Acme 1 10 ten 50 40"], {"a.jpg": (60, 60)})
    with pytest.raises(DatasetError, match="must be integers"):
        read_dataset(root)


def test_missing_image_is_a_dataset_error(tmp_path: Path) -> None:
    root = _flickr(tmp_path, ["missing.jpg Acme 1 1 1 5 5"], {})
    with pytest.raises(DatasetError, match=r"missing\.jpg does not exist"):
        read_dataset(root)


def test_unreadable_image_is_a_dataset_error(tmp_path: Path) -> None:
    root = _flickr(tmp_path, ["a.jpg Acme 1 1 1 5 5"], {})
    (root / "images" / "a.jpg").write_bytes(b"not a picture")
    with pytest.raises(DatasetError, match="cannot read image"):
        read_dataset(root)


def test_path_like_file_names_are_refused(tmp_path: Path) -> None:
    root = _flickr(tmp_path, ["../a.jpg Acme 1 1 1 5 5"], {})
    with pytest.raises(DatasetError, match="plain name"):
        read_dataset(root)


def test_folder_layout_with_a_no_logo_folder(tmp_path: Path) -> None:
    root = write_brand_folders(tmp_path / "set", per_brand=3, no_logo_folder="none")
    (root / "acme" / "notes.txt").write_text("not an image")
    dataset = read_dataset(root, no_logo_folder="none")
    assert dataset.layout == "folders"
    assert dataset.labels == ("acme", "globex")
    assert len(dataset.photos) == 9
    logo_free = [photo for photo in dataset.photos if not photo.has_logo]
    assert len(logo_free) == 3
    acme = dataset.by_name()["acme/0.png"]
    assert acme.brands == ("acme",) and acme.boxes == ()
    assert acme.logo_boxes() == (LogoBox("acme", (0, 0, 96, 96)),)


def test_unknown_no_logo_folder_is_a_dataset_error(tmp_path: Path) -> None:
    root = write_brand_folders(tmp_path / "set", per_brand=1)
    with pytest.raises(DatasetError, match="no folder 'nothing'"):
        read_dataset(root, no_logo_folder="nothing")


def test_folder_that_is_neither_layout_is_a_dataset_error(tmp_path: Path) -> None:
    draw_photo((20, 20), [], seed=0).save(tmp_path / "loose.jpg")
    with pytest.raises(DatasetError, match="neither a FlickrLogos-style"):
        read_dataset(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        read_dataset(tmp_path / "nowhere")


def test_negatives_folder(tmp_path: Path) -> None:
    for index in range(2):
        draw_photo((30, 20), [], seed=index).save(tmp_path / f"{index}.jpg")
    photos = read_negative_photos(tmp_path)
    assert [photo.brands for photo in photos] == [(), ()]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="has no images"):
        read_negative_photos(tmp_path / "empty")
    with pytest.raises(DatasetError, match="is not a folder"):
        read_negative_photos(tmp_path / "0.jpg")


def _photos(count_per_brand: dict[str, int]) -> list[LabeledPhoto]:
    photos = []
    for brand, count in count_per_brand.items():
        for index in range(count):
            box = LogoBox(brand, (0, 0, 10, 10))
            photos.append(
                LabeledPhoto(Path(f"{brand}{index}"), f"{brand}{index}", (50, 50), (brand,), (box,))
            )
    return photos


def test_split_is_by_photo_stratified_and_deterministic() -> None:
    photos = _photos({"acme": 20, "globex": 10, "initech": 3})
    split = split_by_photo(photos, validation_fraction=0.15, test_fraction=0.2, seed=4)
    sides = [set(split.train), set(split.validation), set(split.test)]
    assert sum(len(side) for side in sides) == len(photos)
    assert set().union(*sides) == {photo.name for photo in photos}
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    assert sum(name.startswith("acme") for name in split.test) == 4
    assert sum(name.startswith("globex") for name in split.test) == 2
    assert any(name.startswith("initech") for name in split.train)
    again = split_by_photo(photos, validation_fraction=0.15, test_fraction=0.2, seed=4)
    assert again == split
    other = split_by_photo(photos, validation_fraction=0.15, test_fraction=0.2, seed=5)
    assert other.test != split.test


def test_split_keeps_at_least_one_photo_to_train_on() -> None:
    split = split_by_photo(_photos({"acme": 1}), validation_fraction=0.4, test_fraction=0.4, seed=0)
    assert split.train == ("acme0",) and split.test == () and split.validation == ()


def test_split_fractions_are_checked() -> None:
    with pytest.raises(ValueError, match="leave photos"):
        split_by_photo(_photos({"a": 3}), validation_fraction=0.5, test_fraction=0.5, seed=0)


def test_split_round_trips_through_its_file_content(tmp_path: Path) -> None:
    root = write_flickr_dataset(tmp_path / "set")
    dataset = read_dataset(root)
    split = split_by_photo(dataset.photos, validation_fraction=0.2, test_fraction=0.2, seed=1)
    data = split.to_dict(dataset=dataset)
    assert data["dataset"] == str(root.resolve())
    assert type(split).from_dict(data) == split


def test_background_regions_touch_no_box() -> None:
    logo = LogoBox("acme", (40, 30, 90, 80))
    photo = LabeledPhoto(Path("p"), "p", (200, 150), ("acme",), (logo,))
    regions = background_regions(photo, count=20, rng=np.random.default_rng(0), attempts=500)
    assert len(regions) == 20
    for region in regions:
        assert intersection_area(region, (28, 18, 102, 92)) == 0
        assert 0 <= region[0] < region[2] <= 200 and 0 <= region[1] < region[3] <= 150


def test_grown_boxes_keep_a_share_of_the_logo_around_it_and_stay_in_the_photo() -> None:
    wide = LogoBox("acme", (100, 50, 180, 70))
    tiny = LogoBox("acme", (2, 2, 10, 10))
    photo = LabeledPhoto(Path("p"), "p", (190, 150), ("acme",), (wide, tiny))
    assert grown_boxes(photo) == [(80, 45, 190, 75), (0, 0, 14, 14)]
    assert grown_boxes(photo, surround=0.0, margin=1) == [(99, 49, 181, 71), (1, 1, 11, 11)]


def test_no_background_regions_when_the_logo_place_is_unknown() -> None:
    photo = LabeledPhoto(Path("p"), "p", (200, 150), ("acme",))
    assert background_regions(photo, count=3, rng=np.random.default_rng(0)) == []


def test_held_out_negatives_are_deterministic_and_as_many_as_asked(tmp_path: Path) -> None:
    dataset = read_dataset(write_flickr_dataset(tmp_path / "set", photos_per_brand=4))
    first = held_out_negatives(dataset.photos, count=12, seed=3)
    assert len(first) == 12
    assert first == held_out_negatives(dataset.photos, count=12, seed=3)
    for photo, region in first:
        assert all(intersection_area(region, logo.box) == 0 for logo in photo.boxes)


def test_clipping_keeps_whether_a_boxs_extent_is_known() -> None:
    boxes = (LogoBox("acme", (-5, 0, 20, 20), extent_known=False), LogoBox("acme", (0, 0, 9, 9)))
    clipped = _clip_boxes(boxes, (10, 10))
    assert clipped == (
        LogoBox("acme", (0, 0, 10, 10), extent_known=False),
        LogoBox("acme", (0, 0, 9, 9)),
    )
