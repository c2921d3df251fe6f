"""Plain value types that flow through the pipeline (no ORM, no TensorFlow, no Celery)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

Box = tuple[int, int, int, int]
"""A box in an image's own pixels: (x1, y1, x2, y2), top-left and bottom-right corners."""


@dataclass(frozen=True)
class Detection:
    """One brand found in one image: which brand, how sure, where."""

    brand: str
    probability: float
    box: Box | None


@dataclass(frozen=True)
class CollectedPost:
    """A post as a collector brings it, before it is stored.

    ``platform`` and ``external_id`` together identify the post everywhere (a boost or repost of a
    post is reported as the original post, so it is stored once). ``image_urls`` are http(s) URLs or,
    for local sources, ``file://`` URLs. ``skipped_images`` counts images the collector left out
    because the post declared them 1 or 2 pixels on a side (tracking pixels).
    """

    platform: str
    external_id: str
    url: str | None
    author_handle: str | None
    text: str | None
    created_at: datetime | None
    image_urls: tuple[str, ...] = ()
    author_name: str | None = None
    author_followers: int | None = None
    language: str | None = None
    reposts: int | None = None
    skipped_images: int = 0


@dataclass(frozen=True)
class CollectionBatch:
    """What one collection run of one source returned.

    ``cursor`` is the collector's bookmark (since_id, cursor, newest date...) to pass back on the next
    run so that only new posts are fetched; ``None`` keeps the previous one.
    """

    posts: list[CollectedPost] = field(default_factory=list)
    cursor: dict[str, object] | None = None
