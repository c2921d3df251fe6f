"""Turning photos and windows of photos into the model's input, the same way in training and use.

The saved model resizes and scales inside itself, so any caller can give it raw pixels. Windows
are still cut and shrunk here, with PIL's antialiasing filter, to batch windows of different sizes
together; training samples go through exactly this function too, so the model sees at work what
it saw in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from monitor.domain import Box
from monitor.exceptions import ImageDecodeError
from monitor.images.decode import decode_image

DEFAULT_MAX_PIXELS = 50_000_000


def window_pixels(image: Image.Image, window: Box, size: int) -> np.ndarray:
    """The ``window`` of ``image`` resized to ``size`` x ``size``, as uint8 RGB (size, size, 3)."""
    region = image.crop(window) if window != (0, 0, *image.size) else image
    if region.mode != "RGB":
        region = region.convert("RGB")
    resized = region.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    return np.asarray(resized, dtype=np.uint8)


def stack_windows(image: Image.Image, windows: Sequence[Box], size: int) -> np.ndarray:
    """The windows of one image as a (len(windows), size, size, 3) uint8 batch."""
    return np.stack([window_pixels(image, window, size) for window in windows])


def open_image(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read an image file as an upright RGB picture, or raise ImageDecodeError saying why not."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return decode_image(data, max_pixels=max_pixels)
    except ImageDecodeError as exc:
        raise ImageDecodeError(f"{path}: {exc}") from exc
