"""The small picture kept as evidence of a detection once an image's full bytes are let go."""

from __future__ import annotations

import io

from PIL.Image import Image


def make_thumbnail(picture: Image, *, side: int, quality: int = 80) -> bytes:
    """A JPEG of ``picture`` fitted into ``side`` x ``side`` pixels, aspect ratio kept.

    A few kilobytes against the hundreds a full photo takes: enough to see the logo a detection
    names, small enough that a store of millions of images stays a database, not an archive.
    """
    small = picture.convert("RGB")
    small.thumbnail((side, side))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()
