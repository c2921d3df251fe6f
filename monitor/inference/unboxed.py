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
theirs: ``images/123.jpg Cocacola X1 Y1 X2 Y2``. With ``TrainOptions.added_logo_boxes`` (off
by default: README, "Boxes for the logos the annotations missed") such a box teaches the networks
that logo on the training side of the split (a logo to find instead of background to ignore);
validation and test photos keep the annotations' boxes, so their numbers stay comparable with
those measured before, and a listed photo stays one no logo-free picture is cut from. Every
added box is checked whether or not it is used. FlickrLogos-27's training set, whose folder is
read-only for most of its users, has its list here, recognised by the SHA-256 of its annotations
file: found by looking at every candidate a trained detector gave away from every box, over all
its photos, and keeping the photos where a person saw a logo there (another brand's, another
instance of the same, or a part of the boxed logo's design left outside its box). Training reads
these lists; ``monitor evaluate`` does not, so test numbers stay comparable with those measured
before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from monitor.domain import Box
from monitor.exceptions import DatasetError
from monitor.inference.datasets import (
    ANNOTATIONS_FILE,
    Dataset,
    LabeledPhoto,
    LogoBox,
    box_corners,
    clipped_box,
)

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
FLICKR_LOGOS_27_ADDED_BOXES: tuple[tuple[str, str, Box], ...] = (
    ("images/2962045.jpg", "Cocacola", (45, 116, 100, 165)),
    ("images/2962045.jpg", "Cocacola", (110, 98, 155, 169)),
    ("images/142479250.jpg", "Cocacola", (263, 15, 314, 43)),
    ("images/144503924.jpg", "Adidas", (56, 147, 227, 189)),
    ("images/193274877.jpg", "Sprite", (231, 131, 340, 249)),
    ("images/194328418.jpg", "McDonalds", (98, 42, 162, 104)),
    ("images/282208842.jpg", "Nike", (32, 38, 128, 88)),
    ("images/282208842.jpg", "Adidas", (136, 117, 222, 169)),
    ("images/386268634.jpg", "Cocacola", (60, 217, 116, 254)),
    ("images/386268634.jpg", "Cocacola", (62, 283, 116, 317)),
    ("images/386268634.jpg", "Cocacola", (63, 342, 114, 374)),
    ("images/386268634.jpg", "Cocacola", (64, 160, 114, 207)),
    ("images/386268634.jpg", "Cocacola", (140, 398, 190, 433)),
    ("images/386268634.jpg", "Cocacola", (160, 165, 222, 203)),
    ("images/386268634.jpg", "Cocacola", (160, 224, 218, 260)),
    ("images/386268634.jpg", "Cocacola", (160, 280, 223, 317)),
    ("images/386268634.jpg", "Cocacola", (162, 338, 220, 374)),
    ("images/386268634.jpg", "Cocacola", (216, 340, 270, 374)),
    ("images/391805226.jpg", "Cocacola", (125, 306, 283, 436)),
    ("images/391805226.jpg", "Cocacola", (133, 125, 256, 142)),
    ("images/391805226.jpg", "Cocacola", (176, 49, 242, 99)),
    ("images/399293334.jpg", "Citroen", (2, 138, 204, 180)),
    ("images/542894584.jpg", "Cocacola", (72, 126, 122, 161)),
    ("images/542894584.jpg", "Cocacola", (72, 184, 122, 216)),
    ("images/542894584.jpg", "Cocacola", (72, 298, 120, 331)),
    ("images/542894584.jpg", "Cocacola", (73, 248, 124, 282)),
    ("images/542894584.jpg", "Cocacola", (144, 358, 202, 397)),
    ("images/542894584.jpg", "Cocacola", (170, 188, 229, 225)),
    ("images/542894584.jpg", "Cocacola", (172, 302, 226, 338)),
    ("images/542894584.jpg", "Cocacola", (173, 239, 231, 276)),
    ("images/542894584.jpg", "Cocacola", (174, 124, 228, 162)),
    ("images/542894584.jpg", "Cocacola", (231, 300, 281, 342)),
    ("images/1412494805.jpg", "Porsche", (25, 158, 119, 203)),
    ("images/1412494805.jpg", "Adidas", (333, 83, 461, 167)),
    ("images/2073319900.jpg", "RedBull", (38, 114, 124, 144)),
    ("images/2263927086.jpg", "Yahoo", (53, 26, 377, 209)),
    ("images/2423654138.jpg", "Vodafone", (6, 186, 311, 242)),
    ("images/2423655766.jpg", "Vodafone", (3, 189, 311, 244)),
    ("images/2725852441.jpg", "Cocacola", (255, 358, 312, 400)),
    ("images/2725852441.jpg", "Cocacola", (339, 356, 403, 392)),
    ("images/2766852637.jpg", "Vodafone", (37, 144, 249, 183)),
    ("images/2767698530.jpg", "Vodafone", (34, 153, 249, 189)),
    ("images/2900584649.jpg", "Cocacola", (33, 199, 93, 243)),
    ("images/2908611911.jpg", "Vodafone", (0, 50, 101, 68)),
    ("images/2921061781.jpg", "Intel", (88, 379, 197, 454)),
    ("images/2921061781.jpg", "Intel", (94, 116, 204, 199)),
    ("images/2941703909.jpg", "RedBull", (46, 298, 126, 379)),
    ("images/3051999324.jpg", "Heineken", (76, 109, 178, 228)),
    ("images/3051999324.jpg", "Heineken", (82, 16, 179, 118)),
    ("images/3051999324.jpg", "Heineken", (169, 133, 240, 225)),
    ("images/3051999324.jpg", "Heineken", (176, 15, 250, 102)),
    ("images/3088829946.jpg", "Pepsi", (116, 6, 206, 51)),
    ("images/3088829946.jpg", "Cocacola", (268, 132, 304, 156)),
    ("images/3088829946.jpg", "Cocacola", (268, 189, 304, 214)),
    ("images/3088829946.jpg", "Cocacola", (324, 20, 395, 59)),
    ("images/3088829946.jpg", "Cocacola", (331, 322, 417, 369)),
    ("images/3088829946.jpg", "Cocacola", (332, 126, 383, 159)),
    ("images/3088829946.jpg", "Cocacola", (336, 68, 394, 98)),
    ("images/3088829946.jpg", "Cocacola", (338, 234, 428, 274)),
    ("images/3088829946.jpg", "Cocacola", (375, 172, 499, 228)),
    ("images/3088829946.jpg", "Cocacola", (390, 127, 440, 160)),
    ("images/3088829946.jpg", "Cocacola", (395, 285, 459, 318)),
    ("images/3088829946.jpg", "Cocacola", (454, 83, 500, 111)),
    ("images/3107573789.jpg", "Yahoo", (6, 4, 239, 136)),
    ("images/3189955469.jpg", "Pepsi", (104, 232, 218, 282)),
    ("images/3189955469.jpg", "Pepsi", (143, 179, 208, 203)),
    ("images/3189955469.jpg", "Pepsi", (149, 312, 212, 333)),
    ("images/3189955469.jpg", "Pepsi", (150, 47, 222, 74)),
    ("images/3189955469.jpg", "Pepsi", (154, 93, 220, 125)),
    ("images/3189955469.jpg", "Pepsi", (160, 3, 196, 17)),
    ("images/3189955469.jpg", "Pepsi", (292, 100, 356, 119)),
    ("images/3189955469.jpg", "Pepsi", (297, 244, 367, 272)),
    ("images/3189955469.jpg", "Pepsi", (297, 311, 364, 336)),
    ("images/3189955469.jpg", "Pepsi", (299, 167, 369, 197)),
    ("images/3308750600.jpg", "Ford", (9, 2, 251, 111)),
    ("images/3308750600.jpg", "Pepsi", (33, 347, 197, 464)),
    ("images/3308750600.jpg", "Puma", (342, 179, 488, 288)),
    ("images/3373561589.jpg", "RedBull", (14, 131, 81, 219)),
    ("images/3373561589.jpg", "RedBull", (327, 118, 397, 218)),
    ("images/3496048421.jpg", "Nbc", (3, 240, 53, 291)),
    ("images/3531689273.jpg", "Vodafone", (10, 11, 285, 261)),
    ("images/3531689273.jpg", "Vodafone", (250, 219, 430, 257)),
    ("images/3539566827.jpg", "Sprite", (173, 61, 205, 89)),
    ("images/3539566827.jpg", "Sprite", (187, 101, 233, 135)),
    ("images/3539566827.jpg", "Sprite", (193, 58, 230, 92)),
    ("images/3539566827.jpg", "Sprite", (302, 329, 344, 368)),
    ("images/3539566827.jpg", "Sprite", (305, 287, 343, 320)),
    ("images/3539566827.jpg", "Sprite", (337, 331, 382, 363)),
    ("images/3539566827.jpg", "Sprite", (351, 288, 386, 315)),
    ("images/3539566827.jpg", "Sprite", (385, 138, 422, 174)),
    ("images/3539566827.jpg", "Sprite", (389, 322, 416, 349)),
    ("images/3539566827.jpg", "Sprite", (391, 277, 416, 303)),
    ("images/3586306186.jpg", "Pepsi", (245, 100, 470, 171)),
    ("images/3705989051.jpg", "Vodafone", (17, 57, 114, 74)),
    ("images/3734587026.jpg", "Nbc", (446, 243, 495, 288)),
    ("images/3761584256.jpg", "Texaco", (94, 340, 287, 405)),
    ("images/3817452506.jpg", "Vodafone", (4, 75, 146, 102)),
    ("images/3831371619.jpg", "Heineken", (179, 138, 244, 218)),
    ("images/3831371619.jpg", "Heineken", (190, 29, 248, 100)),
    ("images/3831371619.jpg", "Heineken", (252, 26, 337, 132)),
    ("images/3831371619.jpg", "Heineken", (329, 26, 411, 122)),
    ("images/3835918737.jpg", "McDonalds", (172, 108, 333, 183)),
    ("images/3880700257.jpg", "Pepsi", (8, 44, 69, 78)),
    ("images/3880700257.jpg", "Pepsi", (10, 145, 64, 184)),
    ("images/3880700257.jpg", "Pepsi", (14, 212, 62, 257)),
    ("images/3880700257.jpg", "Pepsi", (17, 83, 44, 106)),
    ("images/3880700257.jpg", "Pepsi", (17, 122, 56, 144)),
    ("images/3880700257.jpg", "Pepsi", (22, 189, 56, 214)),
    ("images/3880700257.jpg", "Cocacola", (83, 283, 135, 323)),
    ("images/3880700257.jpg", "Cocacola", (83, 371, 128, 411)),
    ("images/3880700257.jpg", "Cocacola", (86, 325, 146, 363)),
    ("images/3880700257.jpg", "Cocacola", (88, 190, 142, 223)),
    ("images/3880700257.jpg", "Cocacola", (89, 111, 142, 128)),
    ("images/3880700257.jpg", "Cocacola", (89, 150, 142, 172)),
    ("images/3880700257.jpg", "Cocacola", (89, 239, 136, 267)),
    ("images/3880700257.jpg", "Cocacola", (89, 433, 136, 461)),
    ("images/3880700257.jpg", "Cocacola", (89, 475, 139, 497)),
    ("images/3880700257.jpg", "Cocacola", (92, 47, 139, 75)),
    ("images/3890972492.jpg", "Heineken", (0, 191, 111, 290)),
    ("images/3890972492.jpg", "Heineken", (111, 8, 212, 158)),
    ("images/3890972492.jpg", "Heineken", (117, 181, 219, 314)),
    ("images/3890972492.jpg", "Heineken", (221, 179, 345, 302)),
    ("images/3890972492.jpg", "Heineken", (245, 29, 357, 140)),
    ("images/3890972492.jpg", "Heineken", (364, 14, 473, 114)),
    ("images/3960429630.jpg", "Heineken", (93, 120, 188, 238)),
    ("images/3960429630.jpg", "Heineken", (179, 139, 244, 225)),
    ("images/3960429630.jpg", "Heineken", (186, 34, 249, 110)),
    ("images/3960429630.jpg", "Heineken", (254, 37, 322, 129)),
    ("images/3960429630.jpg", "Heineken", (312, 26, 384, 123)),
    ("images/4405304896.jpg", "Heineken", (15, 176, 145, 296)),
    ("images/4405304896.jpg", "Heineken", (146, 182, 244, 308)),
    ("images/4405304896.jpg", "Heineken", (150, 22, 258, 161)),
    ("images/4405304896.jpg", "Heineken", (263, 37, 361, 148)),
    ("images/4405304896.jpg", "Heineken", (353, 29, 462, 136)),
    ("images/4426526983.jpg", "Porsche", (45, 322, 435, 356)),
    ("images/4491308340.jpg", "Porsche", (0, 135, 300, 161)),
    ("images/4499338915.jpg", "Adidas", (80, 219, 395, 303)),
    ("images/4506432358.jpg", "Porsche", (0, 137, 300, 161)),
    ("images/4507852944.jpg", "Porsche", (0, 137, 300, 161)),
    ("images/4771691508.jpg", "Unicef", (173, 100, 222, 132)),
    ("images/4771691508.jpg", "Unicef", (184, 155, 236, 194)),
)
"""Logos of the listed photos that their annotations miss, boxed (photo, brand, box): the
candidates a trained detector gave there that a person saw were logos of the 27 brands (another
brand's sign, more cans of the boxed brand, a boxed symbol's wordmark), or a box drawn by hand
where the detector gave none. Taglines and product names ("Express", "Centrino", "Atom") are
not boxed; those photos stay listed without a box."""
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
        clipped = clipped_box(logo.box, photo.size)
        if clipped is None:
            width, height = photo.size
            raise DatasetError(
                f"{UNBOXED_LOGOS_FILE}: box {logo.box} of {name} has no area inside its "
                f"{width}x{height} photo"
            )
        checked.append((name, replace(logo, box=clipped)))
    return tuple(checked)


def with_added_boxes(
    photos: Sequence[LabeledPhoto],
    added: Iterable[tuple[str, LogoBox]],
    *,
    extents: bool = True,
) -> list[LabeledPhoto]:
    """``photos`` with the (checked) added boxes of those named, the others as they are.

    Called on the training side of a split only, so that validation and test keep the
    annotations' boxes. ``extents=False`` marks the added boxes' extents as not known: they were
    drawn another way than the annotations', so only their centres and brands are trained.
    """
    extra: dict[str, list[LogoBox]] = {}
    for name, logo in added:
        extra.setdefault(name, []).append(logo if extents else replace(logo, extent_known=False))
    result = []
    for photo in photos:
        logos = extra.get(photo.name)
        if not logos:
            result.append(photo)
            continue
        # one logo per brand and box, the first kept: an annotation's own, whatever the extent
        kept: dict[tuple[str, Box], LogoBox] = {}
        for logo in (*photo.boxes, *logos):
            kept.setdefault((logo.brand, logo.box), logo)
        boxes = tuple(kept.values())
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
    box = box_corners(fields[2:], line=line, path=path, number=number)
    return fields[0], LogoBox(fields[1], box)
