"""Turning untrusted image bytes into an RGB picture the classifier can use.

The bytes come from strangers, so decoding is defensive: the pixel count is checked from the header
before any pixel is decoded (a small file can claim a huge canvas), only common photo formats are
opened (no formats that call out to external programs), the whole image is loaded at once so
truncated data fails here rather than later, and every PIL error becomes an ``ImageDecodeError``.

Whatever the mode of the file (palette, alpha, CMYK, 16-bit grey, 1-bit, animated), the result is
the first frame in mode ``"RGB"``, turned upright by its EXIF orientation, with transparent parts
shown on white (how a viewer would see a logo on a transparent background).
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from monitor.exceptions import ImageDecodeError

logger = logging.getLogger(__name__)

ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF")
"""Formats photos on social media come in. JPEG includes MPO (phone multi-picture JPEGs)."""

EXIF_ORIENTATION = 0x0112
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
WHITE = (255, 255, 255)

# PIL's errors for data it cannot read: it raises several unrelated types.
_PIL_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


@dataclass(frozen=True)
class DecodedImage:
    """A decoded picture and the size of the full image it was decoded from.

    ``picture`` is upright RGB, at most ``max_side`` pixels on its longer side when a ``max_side``
    was asked for; ``width`` and ``height`` are the full upright image's (what boxes refer to).
    """

    picture: Image.Image
    width: int
    height: int

    @property
    def scale(self) -> tuple[float, float]:
        """Factors from picture pixels to full-image pixels (1.0 when decoded at full size)."""
        return self.width / self.picture.width, self.height / self.picture.height


def decode_image(data: bytes, *, max_pixels: int, max_side: int | None = None) -> Image.Image:
    """Decode ``data`` to an upright RGB image, refusing more than ``max_pixels`` pixels."""
    return decode_scaled(data, max_pixels=max_pixels, max_side=max_side).picture


def decode_scaled(data: bytes, *, max_pixels: int, max_side: int | None = None) -> DecodedImage:
    """Decode ``data`` no larger than ``max_side`` on its longer side; every failure a reason.

    JPEG decodes straight at a reduced scale (draft mode, 1/2 to 1/8), so a 43 KB file declaring
    7000 x 7000 costs a few megabytes, not 600; other formats are decoded whole, then shrunk.

    Pillow's plugins raise more than their documented errors (the AVIF plugin a ``RuntimeError``,
    others ``TypeError`` or ``MemoryError`` on hostile headers); whatever one raises, it is this
    image's problem, so it becomes an ``ImageDecodeError`` naming the exception, and the caller
    marks the image failed instead of losing the rest of its batch.
    """
    if not data:
        raise ImageDecodeError("empty file")
    _refuse_markup(data)
    try:
        return _decode(data, max_pixels=max_pixels, max_side=max_side)
    except ImageDecodeError:
        raise
    except Exception as exc:  # any plugin error is this image's, see the docstring
        raise ImageDecodeError(
            f"the decoder failed on this file ({type(exc).__name__}: {str(exc)[:200]})"
        ) from exc


def _decode(data: bytes, *, max_pixels: int, max_side: int | None) -> DecodedImage:
    image = _open_checked(data, max_pixels=max_pixels)
    full_size = image.size  # before draft mode shrinks it
    if max_side is not None and image.format == "JPEG":
        image.draft("RGB", (max_side, max_side))
    _load_first_frame(image)
    width, height = _upright_size(full_size, image)
    picture = to_rgb(_apply_orientation(image))
    if max_side is not None and max(picture.size) > max_side:
        picture.thumbnail((max_side, max_side))
    return DecodedImage(picture=picture, width=width, height=height)


def _upright_size(full_size: tuple[int, int], image: Image.Image) -> tuple[int, int]:
    """The full image's size once turned upright (EXIF orientations 5-8 swap the sides).

    Asked after the pixels are loaded: reading EXIF can load a PNG, which must fail in the load.
    """
    width, height = full_size
    try:
        orientation = image.getexif().get(EXIF_ORIENTATION)
    except _PIL_READ_ERRORS:
        return width, height
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _refuse_markup(data: bytes) -> None:
    """Name the usual wrong answer (an HTML error or login page) instead of 'unknown format'."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        raise ImageDecodeError("not an image: the data is an HTML page")
    if head.startswith((b"<?xml", b"<svg")):
        raise ImageDecodeError("not a supported image: the data is XML or SVG")


def _open_checked(data: bytes, *, max_pixels: int) -> Image.Image:
    """Open (read the header only) and check the canvas size before decoding pixels.

    PIL's own decompression-bomb check uses a process-wide limit and only warns below twice that
    limit; here its warning is turned into an error for this call so that it never passes silently.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"too many pixels: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(
            f"not a recognised image: corrupt data, or not one of {', '.join(ALLOWED_FORMATS)}"
        ) from exc
    except _PIL_READ_ERRORS as exc:
        raise ImageDecodeError(f"corrupt image header: {exc}") from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"too many pixels: {width}x{height} = {width * height}, the limit is {max_pixels}"
        )
    return image


def _load_first_frame(image: Image.Image) -> None:
    """Decode every pixel of the first frame now, so truncated or corrupt data fails here."""
    try:
        image.seek(0)
        image.load()
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(f"too many pixels: {exc}") from exc
    except _PIL_READ_ERRORS as exc:
        raise ImageDecodeError(f"truncated or corrupt {image.format} data: {exc}") from exc


def _apply_orientation(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (phones store photos sideways).

    Unreadable EXIF does not spoil good pixels: the image is then used as stored.
    """
    try:
        upright = ImageOps.exif_transpose(image)
    except _PIL_READ_ERRORS as exc:
        logger.debug("ignoring unreadable EXIF orientation: %s", exc)
        return image.copy()
    return upright if upright is not None else image


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB: alpha shown on white, 16/32-bit grey scaled to 8 bits."""
    if image.mode == "RGB":
        return image
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        return _composite_on_white(image)
    if image.mode.startswith("I") or image.mode == "F":
        return _scale_to_8_bit(image).convert("RGB")
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise ImageDecodeError(f"unsupported colour mode {image.mode}") from exc


def _composite_on_white(image: Image.Image) -> Image.Image:
    """Flatten transparency onto a white background."""
    try:
        rgba = image.convert("RGBA")
    except ValueError as exc:
        raise ImageDecodeError(f"unsupported colour mode {image.mode} with alpha") from exc
    background = Image.new("RGBA", rgba.size, (*WHITE, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _scale_to_8_bit(image: Image.Image) -> Image.Image:
    """Map 16-bit, 32-bit integer or float grey onto 0-255 (PIL would clip, not scale).

    16-bit modes use their full range; other modes are scaled to 16 bits when their values fit,
    and stretched between their own minimum and maximum otherwise.
    """
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        low, high = 0.0, 65535.0
    else:
        low, high = float(values.min()), float(values.max())
        if low >= 0 and high <= 255:
            low, high = 0.0, 255.0
        elif low >= 0 and high <= 65535:
            low, high = 0.0, 65535.0
    span = high - low if high > low else 1.0
    scaled = np.clip((values - low) * (255.0 / span), 0, 255).round().astype(np.uint8)
    return Image.fromarray(scaled)
