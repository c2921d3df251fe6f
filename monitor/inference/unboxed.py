"""Photos whose boxes miss logos they show: no region of them may stand for a logo-free picture.

Where a dataset has no logo-free photos, training cuts its "no logo" pictures from the logo
photos, outside every box: the validation pictures the threshold is held to (at most 3% of them
given a brand), the second look's "no logo" windows, the window model's hard negatives. That is
only right where the boxes hold every logo in the photo, and public annotations often do not: a
FlickrLogos-27 photo boxed for Pepsi shows shelves of Coca-Cola, an Adidas poster shows a Puma,
a Vodafone photo boxes the symbol and not the wordmark beside it. A model that finds those logos
is then counted wrong, and the threshold rises until it stops finding them, and with them many
real logos (the README has the numbers).

A dataset names its photos with unboxed logos in ``unboxed_logos.txt`` beside its
annotations, one photo name a line (``images/123.jpg``, as the annotations name them; ``#``
starts a comment). A line may also box one of the logos the annotations missed, as they box
theirs: ``images/123.jpg Cocacola X1 Y1 X2 Y2``. Such a box teaches the networks that logo on the
training side of the split (a logo to find instead of background to ignore); validation and test
photos keep the annotations' boxes, so their numbers stay comparable with those measured before,
and a listed photo stays one no logo-free picture is cut from. FlickrLogos-27's training set, whose folder is read-only for most of its
users, has its list here, recognised by the SHA-256 of its annotations file: found by looking
at every candidate a trained detector gave away from every box, over all its photos, and
keeping the photos where a person saw a logo there (another brand's, another instance of the
same, or a part of the boxed logo's design left outside its box). Training reads these lists;
``monitor evaluate`` does not, so test numbers stay comparable with those measured before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from monitor.domain import Box
from monitor.exceptions import DatasetError
from monitor.inference.datasets import ANNOTATIONS_FILE, Dataset, LabeledPhoto, LogoBox

UNBOXED_LOGOS_FILE = "unboxed_logos.txt"

FLICKR_LOGOS_27_ANNOTATIONS_SHA256 = (
    "97f4c1417e0a125b4b70c143d20503af704cbb191e341494f26c678a45d54abc"
)
FLICKR_LOGOS_27_UNBOXED = frozenset(
    (
        "images/2962045.jpg",
        "images/50471578.jpg",
        "images/79556016.jpg",
        "images/142479250.jpg",
        "images/144503924.jpg",
        "images/193274877.jpg",
        "images/194328418.jpg",
        "images/282208842.jpg",
        "images/386268634.jpg",
        "images/391805226.jpg",
        "images/399293334.jpg",
        "images/542894584.jpg",
        "images/1412494805.jpg",
        "images/2073319900.jpg",
        "images/2263927086.jpg",
        "images/2329810624.jpg",
        "images/2333110366.jpg",
        "images/2413159667.jpg",
        "images/2423654138.jpg",
        "images/2423655766.jpg",
        "images/2725852441.jpg",
        "images/2766852637.jpg",
        "images/2767698530.jpg",
        "images/2867420595.jpg",
        "images/2868736304.jpg",
        "images/2900584649.jpg",
        "images/2908611911.jpg",
        "images/2921061781.jpg",
        "images/2941703909.jpg",
        "images/3051999324.jpg",
        "images/3088829946.jpg",
        "images/3107573789.jpg",
        "images/3189955469.jpg",
        "images/3193687005.jpg",
        "images/3259683064.jpg",
        "images/3308750600.jpg",
        "images/3330276462.jpg",
        "images/3349950493.jpg",
        "images/3373561589.jpg",
        "images/3422008846.jpg",
        "images/3428192889.jpg",
        "images/3496048421.jpg",
        "images/3531689273.jpg",
        "images/3539566827.jpg",
        "images/3571331128.jpg",
        "images/3586306186.jpg",
        "images/3667849273.jpg",
        "images/3669539019.jpg",
        "images/3705989051.jpg",
        "images/3734587026.jpg",
        "images/3761584256.jpg",
        "images/3817452506.jpg",
        "images/3831371619.jpg",
        "images/3835918737.jpg",
        "images/3880700257.jpg",
        "images/3890972492.jpg",
        "images/3960429630.jpg",
        "images/4250525590.jpg",
        "images/4405304896.jpg",
        "images/4426526983.jpg",
        "images/4491308340.jpg",
        "images/4499338915.jpg",
        "images/4506432358.jpg",
        "images/4507852944.jpg",
        "images/4771691508.jpg",
    )
)
FLICKR_LOGOS_27_ADDED_BOXES: tuple[tuple[str, str, Box], ...] = ()
"""Logos of the listed photos that their annotations miss, boxed (photo, brand, box)."""
KNOWN_DATASETS = {FLICKR_LOGOS_27_ANNOTATIONS_SHA256: FLICKR_LOGOS_27_UNBOXED}
KNOWN_ADDED_BOXES = {FLICKR_LOGOS_27_ANNOTATIONS_SHA256: FLICKR_LOGOS_27_ADDED_BOXES}


@dataclass(frozen=True)
class UnboxedLogos:
    """A dataset's list: its photos with unboxed logos, and the boxes added for some of those."""

    photos: frozenset[str] = frozenset()
    added: tuple[tuple[str, LogoBox], ...] = ()


def unboxed_photo_names(dataset_dir: Path) -> frozenset[str]:
    """The dataset's photos with unboxed logos: its own list, and the one known for it here."""
    return unboxed_logos(dataset_dir).photos


def unboxed_logos(dataset_dir: Path) -> UnboxedLogos:
    """The dataset's own list (``unboxed_logos.txt``) joined with the one known for it here."""
    names: set[str] = set()
    added: list[tuple[str, LogoBox]] = []
    listed = dataset_dir / UNBOXED_LOGOS_FILE
    if listed.is_file():
        try:
            text = listed.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot read {listed}: {exc}") from exc
        for number, line in enumerate(text.splitlines(), start=1):
            name, logo = _parse_line(line, path=listed, number=number)
            if name:
                names.add(name)
            if logo is not None:
                added.append((name, logo))
    annotations = dataset_dir / ANNOTATIONS_FILE
    if annotations.is_file():
        digest = hashlib.sha256(annotations.read_bytes()).hexdigest()
        names.update(KNOWN_DATASETS.get(digest, frozenset()))
        for name, brand, box in KNOWN_ADDED_BOXES.get(digest, ()):
            names.add(name)
            added.append((name, LogoBox(brand, box)))
    return UnboxedLogos(frozenset(names), tuple(added))


def with_unboxed_logos(dataset: Dataset, names: frozenset[str]) -> Dataset:
    """``dataset`` with the named photos marked as showing unboxed logos.

    A name the dataset does not have is a DatasetError: a list written for another version of
    the annotations would otherwise be silently ignored.
    """
    if not names:
        return dataset
    known = {photo.name for photo in dataset.photos}
    missing = sorted(names - known)
    if missing:
        raise DatasetError(
            f"{len(missing)} photos listed in {UNBOXED_LOGOS_FILE} are not in {dataset.root} "
            f"(e.g. {missing[0]})"
        )
    photos = tuple(
        replace(photo, unboxed_logos=True) if photo.name in names else photo
        for photo in dataset.photos
    )
    return replace(dataset, photos=photos)


def checked_additions(
    dataset: Dataset, added: Iterable[tuple[str, LogoBox]]
) -> tuple[tuple[str, LogoBox], ...]:
    """The list's added boxes, each clipped to its photo, checked before the dataset is split.

    A photo the dataset lacks, a brand it does not know, or a box with no area inside its photo
    is a DatasetError: a list written for another version of the annotations would otherwise
    teach wrong logos.
    """
    photos = dataset.by_name()
    checked = []
    for name, logo in added:
        photo = photos.get(name)
        if photo is None:
            raise DatasetError(f"{UNBOXED_LOGOS_FILE}: {name} is not in {dataset.root}")
        if logo.brand not in dataset.labels:
            raise DatasetError(
                f"{UNBOXED_LOGOS_FILE}: brand {logo.brand!r} (box on {name}) is not one of the "
                f"dataset's brands"
            )
        width, height = photo.size
        x1, y1, x2, y2 = logo.box
        clipped = (max(0, x1), max(0, y1), min(width, x2), min(height, y2))
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            raise DatasetError(
                f"{UNBOXED_LOGOS_FILE}: box {logo.box} of {name} has no area inside its "
                f"{width}x{height} photo"
            )
        checked.append((name, LogoBox(logo.brand, clipped)))
    return tuple(checked)


def with_added_boxes(
    photos: Sequence[LabeledPhoto], added: Iterable[tuple[str, LogoBox]]
) -> list[LabeledPhoto]:
    """``photos`` with the (checked) added boxes of those named, the others as they are.

    Called on the training side of a split only, so that validation and test keep the
    annotations' boxes.
    """
    extra: dict[str, list[LogoBox]] = {}
    for name, logo in added:
        extra.setdefault(name, []).append(logo)
    result = []
    for photo in photos:
        logos = extra.get(photo.name)
        if not logos:
            result.append(photo)
            continue
        boxes = tuple(dict.fromkeys([*photo.boxes, *logos]))
        brands = tuple(sorted({logo.brand for logo in boxes}))
        result.append(replace(photo, boxes=boxes, brands=brands))
    return result


def _parse_line(line: str, *, path: Path, number: int) -> tuple[str, LogoBox | None]:
    """``NAME`` or ``NAME BRAND X1 Y1 X2 Y2``, a ``#`` comment stripped ("" for none)."""
    fields = line.split("#", 1)[0].split()
    if len(fields) <= 1:
        return (fields[0] if fields else ""), None
    if len(fields) != 6:
        raise DatasetError(
            f"{path}:{number}: expected 'PHOTO' or 'PHOTO BRAND X1 Y1 X2 Y2', got {line.strip()!r}"
        )
    try:
        x1, y1, x2, y2 = (int(value) for value in fields[2:])
    except ValueError as exc:
        raise DatasetError(
            f"{path}:{number}: box corners must be integers: {line.strip()!r}"
        ) from exc
    return fields[0], LogoBox(fields[1], (x1, y1, x2, y2))
