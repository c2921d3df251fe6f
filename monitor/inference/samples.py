"""Training samples: windows around logos and logo-free windows, augmented the way logos vary.

A sample is a window of a photo, cut and resized by ``monitor.inference.pixels`` exactly like the
windows the classifier looks at in use, with a class (a brand, or "no logo") and, for logos, the
logo's box as fractions of the window.

Windows around a box vary in scale (the logo fills from all to a small part of the window, as in
the whole photo and the grids at work), aspect ratio and position (the logo may be cut a little at
the window's edge). Augmentation covers how the same logo looks in other photos: small rotations,
colour, contrast, blur and low resolution. Never a horizontal flip: mirrored text is not the logo.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from monitor.domain import Box
from monitor.inference.datasets import LabeledPhoto, background_regions, grown_boxes
from monitor.inference.pixels import open_image, window_pixels
from monitor.inference.windows import grid_windows, intersection_area

NO_BOX = (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Augmentation:
    """How one sample is altered; the identity leaves the pixels as they are."""

    rotation_degrees: float = 0.0
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    blur_radius: float = 0.0
    low_resolution_side: int = 0
    greyscale: bool = False


IDENTITY = Augmentation()


@dataclass(frozen=True)
class SampleSpec:
    """One sample to cut: from which photo, which window, its class and box, how altered."""

    photo_index: int
    window: Box
    label: int
    box_fractions: tuple[float, float, float, float]
    has_box: bool
    augmentation: Augmentation = IDENTITY


@dataclass(frozen=True)
class SamplingPlan:
    """How many samples of each kind to draw per photo, and how varied they are.

    ``max_context`` bounds how much larger than the logo a window may be (side ratio): 1 is a
    tight crop, 4 a window where the logo is a quarter of the side, as a small logo in a grid
    window at work. A photo whose logo's place is not known (folder per class) gives crops whose
    sides are ``min_crop_share`` to all of the photo's instead (see ``photo_crop``).
    """

    windows_per_box: int = 8
    backgrounds_per_photo: int = 6
    max_context: float = 4.0
    max_cut_share: float = 0.15
    augment: bool = True
    whole_photo_min_share: float = 0.2
    min_crop_share: float = 0.6


def plan_samples(
    photos: Sequence[LabeledPhoto],
    *,
    labels: Sequence[str],
    plan: SamplingPlan,
    rng: np.random.Generator,
) -> list[SampleSpec]:
    """Every sample to draw from ``photos``; the "no logo" class is ``len(labels)``."""
    label_index = {label: index for index, label in enumerate(labels)}
    no_logo = len(labels)
    specs: list[SampleSpec] = []
    for photo_index, photo in enumerate(photos):
        if photo.logo_place_unknown:
            specs.extend(_crop_samples(photo_index, photo, label_index, plan, rng))
            continue
        for logo in photo.logo_boxes():
            label = label_index[logo.brand]
            specs.extend(
                _logo_sample(photo_index, photo, logo.box, label, plan, rng)
                for _ in range(plan.windows_per_box)
            )
            whole = _whole_photo_sample(photo_index, photo, logo.box, label, plan)
            if whole is not None:
                specs.append(whole)
        if not photo.has_logo:
            specs.append(
                SampleSpec(
                    photo_index,
                    (0, 0, *photo.size),
                    no_logo,
                    NO_BOX,
                    False,
                    random_augmentation(rng, plan),
                )
            )
        regions = background_regions(photo, count=plan.backgrounds_per_photo, rng=rng)
        specs.extend(
            SampleSpec(photo_index, region, no_logo, NO_BOX, False, random_augmentation(rng, plan))
            for region in regions
        )
    return specs


def _crop_samples(
    photo_index: int,
    photo: LabeledPhoto,
    label_index: dict[str, int],
    plan: SamplingPlan,
    rng: np.random.Generator,
) -> list[SampleSpec]:
    """The whole photo and random large crops of it, for each brand it shows (place unknown)."""
    whole = (0, 0, *photo.size)
    specs: list[SampleSpec] = []
    for brand in photo.brands:
        label = label_index[brand]
        specs.append(SampleSpec(photo_index, whole, label, box_fractions(whole, whole), True))
        for _ in range(plan.windows_per_box):
            window = photo_crop(photo.size, min_share=plan.min_crop_share, rng=rng)
            specs.append(
                SampleSpec(
                    photo_index,
                    window,
                    label,
                    box_fractions(whole, window),
                    True,
                    random_augmentation(rng, plan),
                )
            )
    return specs


def photo_crop(size: tuple[int, int], *, min_share: float, rng: np.random.Generator) -> Box:
    """A random crop whose sides are ``min_share`` to all of the photo's, anywhere in it.

    When all that is known is that a photo shows the class somewhere, the whole photo is the only
    certain sample; large crops still show the logo in most photos of such sets (it is their
    subject) and teach the model the parts of a photo it sees in the classifier's larger windows.
    """
    width, height = size
    crop_width = max(1, round(width * rng.uniform(min_share, 1.0)))
    crop_height = max(1, round(height * rng.uniform(min_share, 1.0)))
    left = int(rng.integers(0, width - crop_width + 1))
    top = int(rng.integers(0, height - crop_height + 1))
    return (left, top, left + crop_width, top + crop_height)


def _logo_sample(
    photo_index: int,
    photo: LabeledPhoto,
    box: Box,
    label: int,
    plan: SamplingPlan,
    rng: np.random.Generator,
) -> SampleSpec:
    """A window around ``box``: random context, aspect and position, clipped to the photo."""
    window = logo_window(photo.size, box, plan=plan, rng=rng)
    return SampleSpec(
        photo_index, window, label, box_fractions(box, window), True, random_augmentation(rng, plan)
    )


def _whole_photo_sample(
    photo_index: int, photo: LabeledPhoto, box: Box, label: int, plan: SamplingPlan
) -> SampleSpec | None:
    """The whole photo as a sample of the logo, when the logo is big enough to be seen in it."""
    width, height = photo.size
    share = min((box[2] - box[0]) / width, (box[3] - box[1]) / height)
    if share < plan.whole_photo_min_share:
        return None
    whole = (0, 0, width, height)
    return SampleSpec(photo_index, whole, label, box_fractions(box, whole), True)


def logo_window(
    size: tuple[int, int], box: Box, *, plan: SamplingPlan, rng: np.random.Generator
) -> Box:
    """A random window showing ``box``: context 1 to ``max_context``, aspect 3:4 to 4:3."""
    width, height = size
    box_width, box_height = box[2] - box[0], box[3] - box[1]
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    context = float(np.exp(rng.uniform(0.0, np.log(plan.max_context))))
    window_width = max(box_width, box_height * aspect) * context
    window_height = window_width / aspect
    cut = plan.max_cut_share
    left = rng.uniform(box[2] - window_width - cut * box_width, box[0] + cut * box_width)
    top = rng.uniform(box[3] - window_height - cut * box_height, box[1] + cut * box_height)
    return _clip_window((left, top, left + window_width, top + window_height), width, height)


def _clip_window(window: tuple[float, float, float, float], width: int, height: int) -> Box:
    """Shift a window into the photo where it fits, clip it where it does not."""
    left, top, right, bottom = window
    shift_x = max(0.0, -left) - max(0.0, right - width)
    shift_y = max(0.0, -top) - max(0.0, bottom - height)
    left, right = left + shift_x, right + shift_x
    top, bottom = top + shift_y, bottom + shift_y
    x1, y1 = max(0, round(left)), max(0, round(top))
    x2, y2 = min(width, round(right)), min(height, round(bottom))
    return (x1, y1, max(x2, x1 + 1), max(y2, y1 + 1))


def box_fractions(box: Box, window: Box) -> tuple[float, float, float, float]:
    """``box`` as fractions of ``window`` (x1, y1, x2, y2), clipped to [0, 1]."""
    width, height = window[2] - window[0], window[3] - window[1]
    values = (
        (box[0] - window[0]) / width,
        (box[1] - window[1]) / height,
        (box[2] - window[0]) / width,
        (box[3] - window[1]) / height,
    )
    x1, y1, x2, y2 = (min(1.0, max(0.0, value)) for value in values)
    return (x1, y1, x2, y2)


def random_augmentation(rng: np.random.Generator, plan: SamplingPlan) -> Augmentation:
    """Random alterations in the ranges photos of logos show."""
    if not plan.augment:
        return IDENTITY
    return Augmentation(
        rotation_degrees=float(rng.uniform(-10, 10)) if rng.random() < 0.5 else 0.0,
        brightness=float(rng.uniform(0.7, 1.3)),
        contrast=float(rng.uniform(0.7, 1.3)),
        saturation=float(rng.uniform(0.6, 1.4)),
        blur_radius=float(rng.uniform(0.5, 1.5)) if rng.random() < 0.2 else 0.0,
        low_resolution_side=int(rng.integers(24, 64)) if rng.random() < 0.15 else 0,
        greyscale=bool(rng.random() < 0.05),
    )


def hard_negative_candidates(
    photos: Sequence[LabeledPhoto],
    *,
    no_logo: int,
    grids: Sequence[int],
    overlap: float,
    min_window_side: int,
    per_photo: int,
    rng: np.random.Generator,
) -> list[SampleSpec]:
    """Logo-free windows placed exactly as the classifier places them at work, to mine.

    Random background windows rarely look like a logo; the windows that make a false positive in
    use are particular ones (signs, text, other brands' marks) seen at the classifier's own grid
    scales. These candidates are the grid windows of each photo that touch no logo box, grown as
    ``grown_boxes`` grows them (all of them in a logo-free photo), up to ``per_photo`` a photo at
    random; training scores them and keeps the ones the model takes for a logo.
    """
    specs: list[SampleSpec] = []
    for photo_index, photo in enumerate(photos):
        if not photo.background_known:
            continue
        blocked = grown_boxes(photo)
        windows = [
            window
            for window in grid_windows(
                *photo.size, grids=grids, overlap=overlap, min_window_side=min_window_side
            )
            if not any(intersection_area(window, box) for box in blocked)
        ]
        chosen = rng.permutation(len(windows))[:per_photo]
        specs.extend(
            SampleSpec(photo_index, windows[index], no_logo, NO_BOX, False)
            for index in sorted(chosen)
        )
    return specs


def render_sample(image: Image.Image, spec: SampleSpec, size: int) -> np.ndarray:
    """The sample's pixels: the window rotated, cut, resized to ``size`` and altered."""
    augmentation = spec.augmentation
    source = image
    if augmentation.rotation_degrees:
        window = spec.window
        centre = ((window[0] + window[2]) / 2, (window[1] + window[3]) / 2)
        source = image.rotate(
            augmentation.rotation_degrees, resample=Image.Resampling.BILINEAR, center=centre
        )
    pixels = Image.fromarray(window_pixels(source, spec.window, size))
    return np.asarray(_alter(pixels, augmentation, size), dtype=np.uint8)


def _alter(picture: Image.Image, augmentation: Augmentation, size: int) -> Image.Image:
    """Colour, blur and resolution changes of an already cut and resized sample."""
    if augmentation == IDENTITY:
        return picture
    if augmentation.low_resolution_side:
        side = augmentation.low_resolution_side
        picture = picture.resize((side, side), Image.Resampling.BILINEAR).resize(
            (size, size), Image.Resampling.BILINEAR
        )
    picture = ImageEnhance.Brightness(picture).enhance(augmentation.brightness)
    picture = ImageEnhance.Contrast(picture).enhance(augmentation.contrast)
    picture = ImageEnhance.Color(picture).enhance(augmentation.saturation)
    if augmentation.blur_radius:
        picture = picture.filter(ImageFilter.GaussianBlur(augmentation.blur_radius))
    if augmentation.greyscale:
        picture = picture.convert("L").convert("RGB")
    return picture


def render_all(
    photos: Sequence[LabeledPhoto], specs: Sequence[SampleSpec], size: int, *, max_pixels: int
) -> Iterator[np.ndarray]:
    """The pixels of every sample, in ``specs`` order, opening each photo once per run of specs."""
    current_index = -1
    image: Image.Image | None = None
    for spec in specs:
        if spec.photo_index != current_index:
            image = open_image(photos[spec.photo_index].path, max_pixels=max_pixels)
            current_index = spec.photo_index
        assert image is not None
        yield render_sample(image, spec, size)
