"""Copy-paste views for the detector: training logos pasted onto other training photos.

FlickrLogos-27 has about twenty training photos a brand, and most logos the detector misses are
small ones. Pasting a training logo's box, scaled anew, onto another training view (Dwibedi et
al., "Cut, Paste and Learn", 2017; Ghiasi et al., "Simple Copy-Paste", 2021) shows each logo at
more sizes and in more surroundings than its own photo has. Two things keep the detector from
learning the paste instead of the logo: the patch's edges are feathered, and as many patches of
logo-free background (cut from photos whose background is known to hold no logo) are pasted the
same way and stay background, so a pasted rectangle is no sign of a logo.

A patch never covers a logo already in the view (nor a part the view ignores), so no target is
hidden under it. Only training photos give patches; validation photos are never pasted from or on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from monitor.inference.heatmaps import TargetBox

InputBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class PastePlan:
    """How many patches a view gets, and how large they are on the input.

    ``share`` of views are pasted on, each with 1 to ``max_patches`` patches, each a logo with
    probability ``logo_share`` and logo-free background otherwise. A patch's long side is drawn
    log-uniformly between ``min_side`` and ``max_side`` input pixels, at most ``max_upscale``
    times its size in the photo it comes from (more would only paste a blur).
    """

    share: float = 0.5
    max_patches: int = 3
    logo_share: float = 0.5
    min_side: float = 14.0
    max_side: float = 140.0
    max_upscale: float = 2.0
    feather: float = 1.5
    brightness: tuple[float, float] = (0.8, 1.2)
    attempts: int = 10


@dataclass(frozen=True)
class LogoPatch:
    """A training logo cut along its box, and its label index."""

    image: Image.Image
    label: int


@dataclass(frozen=True)
class BackgroundSource:
    """A training photo whose parts outside its boxes hold no logo, and those boxes."""

    image: Image.Image
    boxes: tuple[InputBox, ...]


@dataclass(frozen=True)
class PatchBank:
    """What views are pasted with: logos grouped by label, and photos to cut background from."""

    logos: tuple[tuple[LogoPatch, ...], ...]
    backgrounds: tuple[BackgroundSource, ...]
    aspects: tuple[float, ...]
    """Width over height of every logo in the bank: background patches take these shapes."""

    @property
    def empty(self) -> bool:
        return not self.logos


def patch_bank(
    photos: Sequence[tuple[Image.Image, Sequence[tuple[InputBox, int, bool]], bool]],
    *,
    min_side: float = 8.0,
) -> PatchBank:
    """The bank of ``photos`` given as (image, [(box, label, extent known)], background known).

    A logo whose extent is not known (a box drawn by another hand) is not cut: its box may not
    hold the whole logo, or may hold more than it.
    """
    by_label: dict[int, list[LogoPatch]] = {}
    backgrounds: list[BackgroundSource] = []
    aspects: list[float] = []
    for image, boxes, background_known in photos:
        picture = image if image.mode == "RGB" else image.convert("RGB")
        for box, label, extent_known in boxes:
            left, top = max(0, round(box[0])), max(0, round(box[1]))
            right = min(picture.size[0], round(box[2]))
            bottom = min(picture.size[1], round(box[3]))
            if not extent_known or min(right - left, bottom - top) < min_side:
                continue
            by_label.setdefault(label, []).append(
                LogoPatch(picture.crop((left, top, right, bottom)), label)
            )
            aspects.append((right - left) / (bottom - top))
        if background_known:
            backgrounds.append(BackgroundSource(picture, tuple(box for box, _, _ in boxes)))
    return PatchBank(
        logos=tuple(tuple(by_label[label]) for label in sorted(by_label)),
        backgrounds=tuple(backgrounds),
        aspects=tuple(aspects),
    )


def paste_patches(
    pixels: np.ndarray,
    *,
    occupied: Sequence[InputBox],
    area: InputBox,
    bank: PatchBank,
    rng: np.random.Generator,
    plan: PastePlan,
) -> tuple[np.ndarray, list[TargetBox]]:
    """Paste patches onto a view's ``pixels``; the pasted logos as targets.

    ``occupied`` are the view's logos and ignored parts (input pixels), which no patch covers;
    ``area`` is where the photo lies on the input, where patches go when they fit in it.
    """
    if bank.empty or rng.random() >= plan.share:
        return pixels, []
    canvas = pixels.astype(np.float32)
    taken: list[InputBox] = [(box[0], box[1], box[2], box[3]) for box in occupied]
    targets: list[TargetBox] = []
    for _ in range(int(rng.integers(1, plan.max_patches + 1))):
        is_logo = not bank.backgrounds or rng.random() < plan.logo_share
        patch, label = (
            _logo_patch(bank, rng) if is_logo else (_background_patch(bank, rng, plan), -1)
        )
        if patch is None:
            continue
        resized = _resized(patch, rng, plan)
        spot = _free_spot(resized.size, canvas.shape[0], area, taken, rng, plan.attempts)
        if spot is None:
            continue
        _blend(canvas, resized, spot, rng, plan)
        box = (float(spot[0]), float(spot[1]), spot[0] + resized.size[0], spot[1] + resized.size[1])
        taken.append(box)
        if label >= 0:
            targets.append(TargetBox(box=box, label=label))  # type: ignore[arg-type]
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), targets


def _logo_patch(bank: PatchBank, rng: np.random.Generator) -> tuple[Image.Image, int]:
    """A logo of a brand drawn uniformly, so rare brands are pasted as often as common ones."""
    brand = bank.logos[int(rng.integers(len(bank.logos)))]
    logo = brand[int(rng.integers(len(brand)))]
    return logo.image, logo.label


def _background_patch(
    bank: PatchBank, rng: np.random.Generator, plan: PastePlan
) -> Image.Image | None:
    """A logo-shaped region of a background-known photo that touches none of its boxes."""
    source = bank.backgrounds[int(rng.integers(len(bank.backgrounds)))]
    width, height = source.image.size
    aspect = bank.aspects[int(rng.integers(len(bank.aspects)))] if bank.aspects else 1.0
    for _ in range(plan.attempts):
        long_side = float(rng.uniform(0.05, 0.4)) * max(width, height)
        patch_width = long_side if aspect >= 1 else long_side * aspect
        patch_height = long_side / aspect if aspect >= 1 else long_side
        if patch_width >= width or patch_height >= height or min(patch_width, patch_height) < 4:
            continue
        left = float(rng.uniform(0, width - patch_width))
        top = float(rng.uniform(0, height - patch_height))
        region = (left, top, left + patch_width, top + patch_height)
        if not any(_overlaps(region, box) for box in source.boxes):
            return source.image.crop(tuple(round(value) for value in region))  # type: ignore[arg-type]
    return None


def _resized(patch: Image.Image, rng: np.random.Generator, plan: PastePlan) -> Image.Image:
    """The patch scaled to a drawn long side (keeping its shape), whole pixels, at least 4."""
    long_side = float(np.exp(rng.uniform(np.log(plan.min_side), np.log(plan.max_side))))
    long_side = min(long_side, plan.max_upscale * max(patch.size))
    scale = long_side / max(patch.size)
    size = (max(4, round(patch.size[0] * scale)), max(4, round(patch.size[1] * scale)))
    return patch.resize(size, Image.Resampling.BILINEAR)


def _free_spot(
    patch_size: tuple[int, int],
    input_size: int,
    area: InputBox,
    taken: Sequence[InputBox],
    rng: np.random.Generator,
    attempts: int,
) -> tuple[int, int] | None:
    """A top-left corner where the patch lies on the input, in the photo where it fits there,
    and clear of every taken box; None when ``attempts`` draws find none."""
    width, height = patch_size
    low_x, low_y = max(0.0, area[0]), max(0.0, area[1])
    high_x, high_y = min(float(input_size), area[2]), min(float(input_size), area[3])
    if high_x - low_x < width or high_y - low_y < height:
        low_x, low_y, high_x, high_y = 0.0, 0.0, float(input_size), float(input_size)
    if high_x - low_x < width or high_y - low_y < height:
        return None
    for _ in range(attempts):
        left = int(rng.integers(int(np.ceil(low_x)), int(high_x - width) + 1))
        top = int(rng.integers(int(np.ceil(low_y)), int(high_y - height) + 1))
        box = (float(left), float(top), float(left + width), float(top + height))
        if not any(_overlaps(box, other, margin=2.0) for other in taken):
            return left, top
    return None


def _blend(
    canvas: np.ndarray,
    patch: Image.Image,
    spot: tuple[int, int],
    rng: np.random.Generator,
    plan: PastePlan,
) -> None:
    """Lay the patch on the canvas in place, its brightness changed and its edges feathered."""
    values = np.asarray(patch, dtype=np.float32) * float(rng.uniform(*plan.brightness))
    height, width = values.shape[:2]
    rows = np.minimum(np.arange(height), np.arange(height)[::-1]) + 0.5
    cols = np.minimum(np.arange(width), np.arange(width)[::-1]) + 0.5
    alpha = np.clip(np.minimum.outer(rows, cols) / plan.feather, 0.0, 1.0)[..., np.newaxis]
    left, top = spot
    region = canvas[top : top + height, left : left + width]
    region[...] = alpha * values + (1.0 - alpha) * region


def _overlaps(first: InputBox, second: Sequence[float], margin: float = 0.0) -> bool:
    return (
        first[0] < second[2] + margin
        and second[0] < first[2] + margin
        and first[1] < second[3] + margin
        and second[1] < first[3] + margin
    )
