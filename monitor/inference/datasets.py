"""Reading logo datasets, splitting them by photo, and finding logo-free regions (no TensorFlow).

Two layouts are understood:

* **FlickrLogos-style**: ``annotations.txt`` with one box a line, ``FILE BRAND SUBSET X1 Y1 X2 Y2``,
  and the photos in ``images/``. The same box repeats under several subset numbers and is counted
  once; boxes with no area (after clipping to the photo) are skipped.
* **folder per brand**: one sub-folder of images per brand (``train/old``, ``train/new``); the
  logo's place is not known, so the whole image stands for it. One folder may be named as the
  "no logo" folder.

Splits are made **by photo** so that no photo has boxes on both sides, stratified by brand so each
side has every brand, and are deterministic for a seed.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from monitor.domain import Box
from monitor.exceptions import DatasetError
from monitor.inference.windows import intersection_area

ANNOTATIONS_FILE = "annotations.txt"
IMAGES_FOLDER = "images"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})

Layout = Literal["flickr", "folders"]

LOGO_SURROUND = 0.25
"""How far around an annotated logo box its design may still show, as a share of its side."""


@dataclass(frozen=True)
class LogoBox:
    """One annotated logo: its brand and its box in photo pixels.

    ``extent_known=False`` marks a box whose centre and brand are to be trusted but whose sides
    were drawn another way than the dataset's annotations (a list's added box, see
    ``monitor.inference.unboxed``): the detector learns where it is and what it is, not its sides.
    """

    brand: str
    box: Box
    extent_known: bool = True


@dataclass(frozen=True)
class LabeledPhoto:
    """A photo of a dataset and what it shows.

    ``name`` is the photo's path relative to the dataset folder (how split files list it).
    ``brands`` is empty for a logo-free photo. ``boxes`` is empty when the logo's place is not
    known (folder layout): the whole photo then stands for the logo. ``unboxed_logos`` marks a
    photo showing logos its boxes miss (another brand's sign behind the annotated one, a second
    can, the wordmark beside a boxed symbol): its boxes still teach where logos are, but no part
    of it outside them may stand for a logo-free picture.
    """

    path: Path
    name: str
    size: tuple[int, int]
    brands: tuple[str, ...]
    boxes: tuple[LogoBox, ...] = ()
    unboxed_logos: bool = False

    @property
    def has_logo(self) -> bool:
        return bool(self.brands)

    @property
    def background_known(self) -> bool:
        """Whether the photo's parts outside its boxes are known to show no logo."""
        return not self.logo_place_unknown and not self.unboxed_logos

    @property
    def logo_place_unknown(self) -> bool:
        """A logo is shown but not where: no region of the photo is known to be logo-free."""
        return self.has_logo and not self.boxes

    def logo_boxes(self) -> tuple[LogoBox, ...]:
        """The annotated boxes, or the whole photo per brand when the place is not known."""
        if self.boxes or not self.brands:
            return self.boxes
        return tuple(LogoBox(brand, (0, 0, *self.size)) for brand in self.brands)


@dataclass(frozen=True)
class Dataset:
    """The photos of one dataset folder and its brand labels (sorted)."""

    root: Path
    layout: Layout
    labels: tuple[str, ...]
    photos: tuple[LabeledPhoto, ...]

    def by_name(self) -> dict[str, LabeledPhoto]:
        return {photo.name: photo for photo in self.photos}


def detect_layout(dataset_dir: Path) -> Layout:
    """Which layout a dataset folder has; DatasetError when it is neither."""
    if not dataset_dir.is_dir():
        raise DatasetError(f"dataset folder {dataset_dir} does not exist")
    if (dataset_dir / ANNOTATIONS_FILE).is_file():
        return "flickr"
    if any(child.is_dir() and not child.name.startswith(".") for child in dataset_dir.iterdir()):
        return "folders"
    raise DatasetError(
        f"{dataset_dir} is neither a FlickrLogos-style dataset ({ANNOTATIONS_FILE} + "
        f"{IMAGES_FOLDER}/) nor a folder per brand (sub-folders of images)"
    )


def read_dataset(dataset_dir: Path, *, no_logo_folder: str | None = None) -> Dataset:
    """Read a dataset in either layout (see the module's docstring)."""
    dataset_dir = Path(dataset_dir)
    if detect_layout(dataset_dir) == "flickr":
        return read_flickr_logos(dataset_dir)
    return read_brand_folders(dataset_dir, no_logo_folder=no_logo_folder)


# --- FlickrLogos ---------------------------------------------------------------------------------


def read_flickr_logos(dataset_dir: Path) -> Dataset:
    """Read ``annotations.txt`` + ``images/``: boxes deduplicated, degenerate boxes skipped."""
    boxes_by_file = _parse_annotations(dataset_dir / ANNOTATIONS_FILE)
    photos: list[LabeledPhoto] = []
    for file_name in sorted(boxes_by_file):
        path = dataset_dir / IMAGES_FOLDER / file_name
        size = image_size(path)
        boxes = _clip_boxes(boxes_by_file[file_name], size)
        if not boxes:
            continue
        brands = tuple(sorted({logo.brand for logo in boxes}))
        name = f"{IMAGES_FOLDER}/{file_name}"
        photos.append(LabeledPhoto(path=path, name=name, size=size, brands=brands, boxes=boxes))
    if not photos:
        raise DatasetError(f"{dataset_dir / ANNOTATIONS_FILE} lists no usable boxes")
    labels = tuple(sorted({brand for photo in photos for brand in photo.brands}))
    return Dataset(root=dataset_dir, layout="flickr", labels=labels, photos=tuple(photos))


def _parse_annotations(path: Path) -> dict[str, list[LogoBox]]:
    """Distinct (brand, box) per file, in first-seen order; a malformed line is a DatasetError."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    boxes: dict[str, list[LogoBox]] = defaultdict(list)
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        file_name, logo = _parse_annotation_line(line, path=path, number=number)
        if logo not in boxes[file_name]:
            boxes[file_name].append(logo)
    return boxes


def _parse_annotation_line(line: str, *, path: Path, number: int) -> tuple[str, LogoBox]:
    """One ``FILE BRAND SUBSET X1 Y1 X2 Y2`` line."""
    fields = line.split()
    if len(fields) != 7:
        raise DatasetError(
            f"{path}:{number}: expected 'FILE BRAND SUBSET X1 Y1 X2 Y2', got {line.strip()!r}"
        )
    file_name, brand = fields[0], fields[1]
    if "/" in file_name or "\\" in file_name or file_name.startswith("."):
        raise DatasetError(f"{path}:{number}: file name {file_name!r} must be a plain name")
    return file_name, LogoBox(brand, box_corners(fields[3:], line=line, path=path, number=number))


def box_corners(fields: Sequence[str], *, line: str, path: Path, number: int) -> Box:
    """``X1 Y1 X2 Y2`` of a list's line as a box; DatasetError naming the line when not integers."""
    try:
        x1, y1, x2, y2 = (int(value) for value in fields)
    except ValueError as exc:
        raise DatasetError(
            f"{path}:{number}: box corners must be integers: {line.strip()!r}"
        ) from exc
    return (x1, y1, x2, y2)


def _clip_boxes(boxes: Iterable[LogoBox], size: tuple[int, int]) -> tuple[LogoBox, ...]:
    """Boxes clipped to the photo, without those left with no area, without repeats."""
    kept: list[LogoBox] = []
    for logo in boxes:
        clipped = clipped_box(logo.box, size)
        if clipped is None:
            continue
        candidate = replace(logo, box=clipped)
        if candidate not in kept:
            kept.append(candidate)
    return tuple(kept)


def clipped_box(box: Box, size: tuple[int, int]) -> Box | None:
    """``box`` clipped to a photo of ``size``; None when nothing of it is left inside."""
    width, height = size
    x1, y1, x2, y2 = box
    clipped = (max(0, x1), max(0, y1), min(width, x2), min(height, y2))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        return None
    return clipped


def image_size(path: Path) -> tuple[int, int]:
    """Width and height of an image file, from its header (orientation applied)."""
    if not path.is_file():
        raise DatasetError(f"image {path} does not exist")
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = _orientation(image)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from exc
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation, 1 (as stored) when there is none or it cannot be read.

    Decoding (``monitor.images.decode``) ignores unreadable EXIF the same way, so the size read
    here is the size of the decoded picture.
    """
    try:
        return int(image.getexif().get(0x0112, 1))
    except (OSError, SyntaxError, ValueError, TypeError):
        return 1


# --- folder per brand ----------------------------------------------------------------------------


def read_brand_folders(dataset_dir: Path, *, no_logo_folder: str | None = None) -> Dataset:
    """One sub-folder of images per brand; ``no_logo_folder`` names logo-free photos."""
    folders = sorted(
        child
        for child in dataset_dir.iterdir()
        if child.is_dir() and not child.name.startswith(".")
    )
    if no_logo_folder is not None and no_logo_folder not in {folder.name for folder in folders}:
        raise DatasetError(f"{dataset_dir} has no folder {no_logo_folder!r} of logo-free photos")
    photos: list[LabeledPhoto] = []
    for folder in folders:
        brands = () if folder.name == no_logo_folder else (folder.name,)
        photos.extend(
            LabeledPhoto(
                path=path,
                name=path.relative_to(dataset_dir).as_posix(),
                size=image_size(path),
                brands=brands,
            )
            for path in list_images(folder)
        )
    labels = tuple(sorted({brand for photo in photos for brand in photo.brands}))
    if not labels:
        raise DatasetError(f"{dataset_dir} has no brand folder with images")
    return Dataset(root=dataset_dir, layout="folders", labels=labels, photos=tuple(photos))


def list_images(folder: Path) -> list[Path]:
    """The image files in a folder and its sub-folders, sorted (hidden files skipped)."""
    if not folder.exists():
        raise DatasetError(f"image folder {folder} does not exist")
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder")
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def read_negative_photos(folder: Path) -> list[LabeledPhoto]:
    """Logo-free photos (the ``--negatives`` folder)."""
    paths = list_images(folder)
    if not paths:
        raise DatasetError(f"negatives folder {folder} has no images")
    return [
        LabeledPhoto(
            path=path, name=path.relative_to(folder).as_posix(), size=image_size(path), brands=()
        )
        for path in paths
    ]


# --- splitting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoSplit:
    """Photo names on each side of a split; no name is on two sides."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]
    seed: int
    validation_fraction: float
    test_fraction: float

    def to_dict(self, *, dataset: Dataset) -> dict[str, Any]:
        """The split-file content: enough to rebuild exactly these sides for this dataset."""
        return {
            "dataset": str(dataset.root.resolve()),
            "layout": dataset.layout,
            "seed": self.seed,
            "validation_fraction": self.validation_fraction,
            "test_fraction": self.test_fraction,
            "train": list(self.train),
            "validation": list(self.validation),
            "test": list(self.test),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhotoSplit:
        """Read a split file's content (KeyError/TypeError/ValueError when malformed)."""
        return cls(
            train=tuple(str(name) for name in data["train"]),
            validation=tuple(str(name) for name in data["validation"]),
            test=tuple(str(name) for name in data["test"]),
            seed=int(data["seed"]),
            validation_fraction=float(data["validation_fraction"]),
            test_fraction=float(data["test_fraction"]),
        )


def split_by_photo(
    photos: Sequence[LabeledPhoto], *, validation_fraction: float, test_fraction: float, seed: int
) -> PhotoSplit:
    """Split photos into train, validation and test, by photo and per brand, deterministically.

    Photos are grouped by their brands (logo-free photos form a group of their own); each group is
    shuffled with a generator seeded from ``seed`` and the group's name, so adding a brand does not
    move the photos of the others; each side gets its share of every group (rounded, at least one
    photo to training).
    """
    _check_fractions(validation_fraction, test_fraction)
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for photo in photos:
        groups[photo.brands].append(photo.name)
    train: list[str] = []
    validation: list[str] = []
    test: list[str] = []
    for key in sorted(groups):
        names = sorted(groups[key])
        order = _group_rng(seed, key).permutation(len(names))
        shuffled = [names[index] for index in order]
        test_count, validation_count = _side_counts(len(names), validation_fraction, test_fraction)
        test.extend(shuffled[:test_count])
        validation.extend(shuffled[test_count : test_count + validation_count])
        train.extend(shuffled[test_count + validation_count :])
    return PhotoSplit(
        train=tuple(sorted(train)),
        validation=tuple(sorted(validation)),
        test=tuple(sorted(test)),
        seed=seed,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
    )


def _check_fractions(validation_fraction: float, test_fraction: float) -> None:
    if not 0.0 <= validation_fraction < 1.0 or not 0.0 <= test_fraction < 1.0:
        raise ValueError("validation and test fractions must be in [0, 1)")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError("validation and test fractions together must leave photos to train on")


def _group_rng(seed: int, key: tuple[str, ...]) -> np.random.Generator:
    """A generator for one group, stable across runs and Python versions (no ``hash()``)."""
    digest = hashlib.sha256("\x1f".join(key).encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def _side_counts(size: int, validation_fraction: float, test_fraction: float) -> tuple[int, int]:
    """How many photos of a group go to test and to validation; training keeps at least one."""
    test_count = round(size * test_fraction)
    validation_count = round(size * validation_fraction)
    while test_count + validation_count >= size and (test_count or validation_count):
        if validation_count >= test_count and validation_count:
            validation_count -= 1
        else:
            test_count -= 1
    return test_count, validation_count


def photos_named(dataset: Dataset, names: Iterable[str]) -> list[LabeledPhoto]:
    """The dataset's photos with these names; DatasetError if one is not in the dataset."""
    by_name = dataset.by_name()
    missing = [name for name in names if name not in by_name]
    if missing:
        raise DatasetError(
            f"{len(missing)} photos of the split are not in {dataset.root} (e.g. {missing[0]})"
        )
    return [by_name[name] for name in names]


# --- logo-free regions ---------------------------------------------------------------------------


def background_regions(
    photo: LabeledPhoto,
    *,
    count: int,
    rng: np.random.Generator,
    min_fraction: float = 0.15,
    max_fraction: float = 0.7,
    attempts: int = 60,
) -> list[Box]:
    """Up to ``count`` random regions of ``photo`` that touch no logo box.

    Each region's sides are between ``min_fraction`` and ``max_fraction`` of the photo's sides,
    with an aspect ratio between 3:4 and 4:3 where the photo allows; boxes are grown first (see
    ``grown_boxes``) so a region does not show the rest of a logo's design. Photos whose logo
    place is unknown, or that show logos nobody boxed, give none (any region might show a logo).
    """
    if not photo.background_known:
        return []
    width, height = photo.size
    blocked = grown_boxes(photo)
    regions: list[Box] = []
    for _ in range(attempts):
        if len(regions) >= count:
            break
        region = _random_region(width, height, rng, min_fraction, max_fraction)
        if region and not any(intersection_area(region, box) for box in blocked):
            regions.append(region)
    return regions


def grown_boxes(
    photo: LabeledPhoto, *, margin: int = 4, surround: float = LOGO_SURROUND
) -> list[Box]:
    """The photo's logo boxes grown so that a region touching none shows no part of a logo.

    Each side moves out by ``surround`` of the box's width (or height), and at least ``margin``
    pixels. Annotated boxes are tight around a logo's mark or lettering, while its design goes on
    around it: the rest of a can's livery, the red field of a vending machine, a badge's ring.
    Regions 4 pixels off the box showed such parts and were taken for the brand, as they should be,
    yet counted as false positives (seen on FlickrLogos-27 test photos); in training they taught
    the model that a logo's own surroundings are "no logo".
    """
    return [_grow(logo.box, margin, surround, photo.size) for logo in photo.boxes]


def _grow(box: Box, margin: int, surround: float, size: tuple[int, int]) -> Box:
    grow_x = max(margin, round(surround * (box[2] - box[0])))
    grow_y = max(margin, round(surround * (box[3] - box[1])))
    return (
        max(0, box[0] - grow_x),
        max(0, box[1] - grow_y),
        min(size[0], box[2] + grow_x),
        min(size[1], box[3] + grow_y),
    )


def _random_region(
    width: int, height: int, rng: np.random.Generator, min_fraction: float, max_fraction: float
) -> Box | None:
    """One random region inside the photo, or None when the photo is too small for one."""
    scale = float(np.exp(rng.uniform(np.log(min_fraction), np.log(max_fraction))))
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    side = scale * float(np.sqrt(width * height))
    region_width = min(width, round(side * np.sqrt(aspect)))
    region_height = min(height, round(side / np.sqrt(aspect)))
    if region_width < 8 or region_height < 8:
        return None
    left = int(rng.integers(0, width - region_width + 1))
    top = int(rng.integers(0, height - region_height + 1))
    return (left, top, left + region_width, top + region_height)


def held_out_negatives(
    photos: Sequence[LabeledPhoto], *, count: int, seed: int
) -> list[tuple[LabeledPhoto, Box]]:
    """``count`` logo-free regions of ``photos``, one per photo in turn, deterministic for a seed.

    These stand for the "no logo" pictures of a test set when the dataset has no logo-free photos:
    each is a region of a photo outside every box. Photos are visited in a seeded order, again and
    again, until there are ``count`` regions or no photo has room for another.
    """
    rng = np.random.default_rng([seed, 7])
    candidates = [photo for photo in photos if photo.boxes]
    order = [candidates[index] for index in rng.permutation(len(candidates))]
    chosen: list[tuple[LabeledPhoto, Box]] = []
    while len(chosen) < count and order:
        still_room: list[LabeledPhoto] = []
        for photo in order:
            if len(chosen) >= count:
                break
            region = background_regions(photo, count=1, rng=rng, min_fraction=0.3, max_fraction=0.7)
            if region and (photo, region[0]) not in chosen:
                chosen.append((photo, region[0]))
                still_room.append(photo)
        order = still_room
    return chosen
