"""Training views of a photo for the detector: scale jitter, crops, colour, blur, small rotations.

Every view is a whole photo placed on the detector's square input (``monitor.inference.letterbox``)
at some scale and offset, so a logo is seen small and large, near the edge and in the middle.
No view is mirrored: a mirrored logo is lettering no one prints. A logo the view cuts keeps its
label only if most of it (``MIN_VISIBLE``) stays in the picture; a logo cut more than that is
left out both ways, as neither a logo to find nor background (``View.ignored``), so the model is
not taught that half a logo is nothing. Everything else in the photo is background.

The first view of each photo is the one serving makes (the photo fitted whole, unaltered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from monitor.inference.heatmaps import TargetBox
from monitor.inference.letterbox import PAD_VALUE, Placement, fitting_placement, letterbox
from monitor.inference.pasting import PastePlan, PatchBank, paste_patches

MIN_VISIBLE = 0.6
"""Share of a logo's area a view must keep for the logo to be a target."""
MIN_SIDE_PIXELS = 4.0
"""Logos smaller than this on the input are too small to learn from and are left out."""


@dataclass(frozen=True)
class ViewPlan:
    """How strongly views are altered."""

    min_scale: float = 0.55
    max_scale: float = 1.4
    zoom_share: float = 0.25
    max_zoom: float = 3.0
    rotation_share: float = 0.2
    max_rotation_degrees: float = 4.0
    colour_share: float = 0.8
    blur_share: float = 0.15


@dataclass(frozen=True)
class View:
    """One training picture: pixels, the logos in it and the logo parts to ignore (input pixels)."""

    pixels: np.ndarray
    boxes: tuple[TargetBox, ...]
    ignored: tuple[tuple[float, float, float, float], ...]


class PhotoLogo(NamedTuple):
    """A logo of a photo: its box in photo pixels, its label index, and whether its extent is
    known (see ``TargetBox``)."""

    box: tuple[float, float, float, float]
    label: int
    extent_known: bool = True


PhotoBoxes = Sequence[PhotoLogo]
"""A photo's logos."""


def serving_view(image: Image.Image, boxes: PhotoBoxes, size: int) -> View:
    """The photo as serving places it: fitted whole, unaltered."""
    placement = fitting_placement(image.size, size)
    return _placed(letterbox(image, size, placement), boxes, placement, size)


def augmented_view(
    image: Image.Image,
    boxes: PhotoBoxes,
    size: int,
    *,
    rng: np.random.Generator,
    plan: ViewPlan = ViewPlan(),
    bank: PatchBank | None = None,
    paste_plan: PastePlan | None = None,
) -> View:
    """A randomly altered view of the photo (see the module docstring).

    With a ``bank`` and a ``paste_plan``, other training logos and background patches may be
    pasted on it (``monitor.inference.pasting``) before its colour and blur change, so they change
    with the rest of the view.
    """
    picture = image if image.mode == "RGB" else image.convert("RGB")
    placed_boxes = list(boxes)
    if rng.random() < plan.rotation_share:
        angle = float(rng.uniform(-plan.max_rotation_degrees, plan.max_rotation_degrees))
        picture, placed_boxes = _rotated(picture, placed_boxes, angle)
    placement = _random_placement(picture.size, size, rng, plan)
    pixels = letterbox(picture, size, placement)
    pasted: list[TargetBox] = []
    if bank is not None and paste_plan is not None:
        pixels, pasted = paste_patches(
            pixels,
            occupied=[placement.to_input(logo.box) for logo in placed_boxes],
            area=placement.to_input((0, 0, *picture.size)),
            bank=bank,
            rng=rng,
            plan=paste_plan,
        )
    altered = Image.fromarray(pixels)
    if rng.random() < plan.colour_share:
        altered = ImageEnhance.Brightness(altered).enhance(float(rng.uniform(0.7, 1.3)))
        altered = ImageEnhance.Contrast(altered).enhance(float(rng.uniform(0.7, 1.3)))
        altered = ImageEnhance.Color(altered).enhance(float(rng.uniform(0.6, 1.4)))
    if rng.random() < plan.blur_share:
        altered = altered.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.4, 1.2))))
    view = _placed(np.asarray(altered, dtype=np.uint8), placed_boxes, placement, size)
    if not pasted:
        return view
    return View(pixels=view.pixels, boxes=(*view.boxes, *pasted), ignored=view.ignored)


def _random_placement(
    photo_size: tuple[int, int], size: int, rng: np.random.Generator, plan: ViewPlan
) -> Placement:
    """A scale around the serving one and an offset: padded where small, cropped where large.

    A share of views zooms in further (up to ``max_zoom``): a region of the photo blown up, as a
    crop or a small picture is when served, so the model learns that enlarged background and
    texture are still no logo, and sees its logos larger.
    """
    low, high = plan.min_scale, plan.max_scale
    if rng.random() < plan.zoom_share:
        low, high = plan.max_scale, plan.max_zoom
    jitter = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    scale = fitting_placement(photo_size, size).scale * jitter
    width, height = photo_size[0] * scale, photo_size[1] * scale
    return Placement(scale=scale, left=_offset(width, size, rng), top=_offset(height, size, rng))


def _offset(extent: float, size: int, rng: np.random.Generator) -> int:
    """Where a side of ``extent`` pixels starts on an input of ``size``: inside, or cut off."""
    room = size - round(extent)
    if room >= 0:
        return int(rng.integers(0, room + 1))
    return -int(rng.integers(0, -room + 1))


def _rotated(
    picture: Image.Image, boxes: PhotoBoxes, angle: float
) -> tuple[Image.Image, list[PhotoLogo]]:
    """The photo turned by ``angle`` degrees (grown to hold it all) and its logos' new boxes.

    A turned box's enclosing box is looser than the logo; the box kept is halfway between that
    and a box of the logo's own size at its new centre.
    """
    turned = picture.rotate(
        angle,
        resample=Image.Resampling.BILINEAR,
        expand=True,
        fillcolor=(PAD_VALUE, PAD_VALUE, PAD_VALUE),
    )
    radians = np.deg2rad(angle)
    cos, sin = np.cos(radians), np.sin(radians)
    old_centre = np.array(picture.size, dtype=np.float64) / 2
    new_centre = np.array(turned.size, dtype=np.float64) / 2

    def turn(points: np.ndarray) -> np.ndarray:
        shifted = points - old_centre
        # PIL turns counter-clockwise on screen (y grows downwards).
        x = shifted[:, 0] * cos + shifted[:, 1] * sin
        y = -shifted[:, 0] * sin + shifted[:, 1] * cos
        return np.stack([x, y], axis=1) + new_centre

    moved: list[PhotoLogo] = []
    for box, label, extent_known in boxes:
        corners = np.array([[box[0], box[1]], [box[2], box[1]], [box[0], box[3]], [box[2], box[3]]])
        turned_corners = turn(corners)
        low, high = turned_corners.min(axis=0), turned_corners.max(axis=0)
        centre = (low + high) / 2
        half = (np.array([box[2] - box[0], box[3] - box[1]]) / 2 + (high - low) / 2) / 2
        turned_box = (*(centre - half), *(centre + half))
        moved.append(PhotoLogo(turned_box, label, extent_known))  # type: ignore[arg-type]
    return turned, moved


def _placed(pixels: np.ndarray, boxes: PhotoBoxes, placement: Placement, size: int) -> View:
    """The view's targets: each logo moved onto the input, kept, or ignored when cut too much."""
    kept: list[TargetBox] = []
    ignored: list[tuple[float, float, float, float]] = []
    for box, label, extent_known in boxes:
        moved = placement.to_input(box)
        clipped = tuple(float(np.clip(value, 0, size)) for value in moved)
        full = max(0.0, moved[2] - moved[0]) * max(0.0, moved[3] - moved[1])
        visible = max(0.0, clipped[2] - clipped[0]) * max(0.0, clipped[3] - clipped[1])
        if visible <= 0 or full <= 0:
            continue
        big_enough = min(clipped[2] - clipped[0], clipped[3] - clipped[1]) >= MIN_SIDE_PIXELS
        if visible / full >= MIN_VISIBLE and big_enough:
            kept.append(
                TargetBox(box=clipped, label=label, extent_known=extent_known)  # type: ignore[arg-type]
            )
        else:
            ignored.append(clipped)  # type: ignore[arg-type]
    return View(pixels=pixels, boxes=tuple(kept), ignored=tuple(ignored))
