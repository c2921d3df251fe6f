"""The photos behind a brand report: the most confident posts, a seeded random sample, the doubtful.

An analyst trusts a count once they have seen what was counted. The HTML report shows three sets of
posts, each with its photo and the detection's box: the most confident detections, a random sample
of the rest (the spot check; the seed makes the same sample come back) and the detections near the
model's threshold, where mistakes are most likely.

The photo a card shows comes from ``evidence_image``, the one place that knows where the store keeps
evidence; where it keeps none the page falls back to the image's original URL.
"""

from __future__ import annotations

import io
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError
from sqlalchemy import and_, desc, func, select
from sqlalchemy.orm import Session

from monitor.analytics.trend import as_date
from monitor.analytics.views import post_detections
from monitor.domain import Box
from monitor.images.decode import to_rgb
from monitor.storage.tables import BrandPostDay, Image, ImageData, PostBrand

THUMBNAIL_SIDE = 480
"""Longest side of an embedded photo: sharp at a card's size, about 30 kB as JPEG."""

THUMBNAIL_QUALITY = 80
EXCERPT_CHARACTERS = 280
DOUBT_SHARE = 0.5
"""Detections in this lower share of the room between the model's threshold and 1 are doubtful.

A detection's probability is the number its decision was made on, never below the threshold:
one that barely cleared it (0.985 for a threshold of 0.98) is the one worth a reviewer's look.
"""

_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")


@dataclass(frozen=True)
class EvidenceImage:
    """A small copy of a photo kept as evidence of a detection."""

    data: bytes
    media_type: str


@dataclass(frozen=True)
class GalleryItem:
    """One detection in one post, with everything its card shows."""

    detection_id: int
    post_id: int
    image_id: int
    platform: str
    author: str | None
    author_name: str | None
    author_url: str | None
    post_url: str | None
    posted_at: datetime | None
    text_excerpt: str
    brand: str
    probability: float
    model_version: str
    box: Box | None
    image_width: int | None
    image_height: int | None
    image_url: str
    image_bytes: bytes | None
    image_media_type: str | None


@dataclass(frozen=True)
class Gallery:
    """The three sets of posts a report shows, and how they were chosen."""

    confident: list[GalleryItem]
    sample: list[GalleryItem]
    doubtful: list[GalleryItem]
    doubt_below: float | None
    doubt_rule: str
    seed: int


def evidence_image(*, session: Session, image_id: int) -> EvidenceImage | None:
    """A JPEG thumbnail of the stored image, or None when the store keeps no usable bytes.

    Stored bytes already passed the fetcher's size and pixel caps; bytes that no longer decode give
    None, so the card falls back to the original URL instead of failing the whole report.
    """
    data = session.get(ImageData, image_id)
    if data is None:
        return None
    if data.thumbnail:  # kept when the image was classified, in the frame its boxes are in
        return EvidenceImage(data=data.thumbnail, media_type="image/jpeg")
    if not data.data:
        return None
    try:
        return EvidenceImage(data=thumbnail_jpeg(data.data), media_type="image/jpeg")
    except (UnidentifiedImageError, OSError, ValueError, PILImage.DecompressionBombError):
        return None


def thumbnail_jpeg(data: bytes, side: int = THUMBNAIL_SIDE) -> bytes:
    """``data`` as a JPEG at most ``side`` pixels a side, in the frame its boxes were found in.

    The classifier saw the photo upright (EXIF orientation applied) with transparency on white
    (``monitor.images.decode``), and its boxes are in that frame; the thumbnail is that same frame
    scaled down evenly, so a box placed in percent of the photo lands on the same pixels. JPEGs are
    decoded at a reduced scale (``draft``), several times faster for phone-sized photos.
    """
    with PILImage.open(io.BytesIO(data)) as photo:
        photo.draft("RGB", (side, side))
        upright = ImageOps.exif_transpose(photo) or photo
        picture = to_rgb(upright)
        picture.thumbnail((side, side))
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=THUMBNAIL_QUALITY)
    return buffer.getvalue()


def account_url(platform: str | None, handle: str | None) -> str | None:
    """The account's page where the platform's handles name one; None where they do not."""
    if not handle:
        return None
    if handle.startswith(("https://", "http://")):
        return handle  # feeds give the author's URI as the handle
    kind, _, host = (platform or "").partition(":")
    if kind == "mastodon" and host:
        user, _, user_host = handle.lstrip("@").partition("@")
        server = user_host or host
        if not _HOST.fullmatch(server):
            return None
        return f"https://{server}/@{quote(user, safe='')}"
    if kind == "bluesky":
        return f"https://bsky.app/profile/{quote(handle, safe=':.')}"
    if kind == "reddit":
        return f"https://www.reddit.com/user/{quote(handle, safe='')}"
    return None


def build_gallery(
    *,
    session: Session,
    brand: str,
    since: date | None = None,
    until: date | None = None,
    size: int = 24,
    seed: int = 0,
    model_thresholds: Mapping[str, float] | None = None,
) -> Gallery:
    """Up to ``size`` cards in each set for ``brand`` in the window (inclusive days, UTC).

    ``model_thresholds`` maps model versions to their no-logo thresholds (from the models'
    metadata); where the detections' model is not among them, the lowest tenth of the
    probabilities is the doubtful band instead.

    Posts are chosen from the per-post summary (``post_brands``: one row per post and brand, with
    its best probability and day) through its indexes, and only the chosen posts' detections are
    read: a brand shown in a million posts costs what one shown in a hundred does.
    """
    window = _window(brand=brand, since=since, until=until)
    candidates = 4 * size
    confident_posts = _post_ids(
        session=session, where=window, order=[desc(PostBrand.max_probability)], limit=candidates
    )
    confident_rows = _best_rows(session=session, brand=brand, post_ids=confident_posts)
    chosen = _distinct_posts(confident_rows, limit=size, exclude=set())
    shown = {row["image_id"] for row in chosen}
    sampled = _sampled_post_ids(
        session=session, brand=brand, since=since, until=until, count=candidates, seed=seed
    )
    sample = _distinct_posts(
        _best_rows(session=session, brand=brand, post_ids=sampled),
        limit=size,
        exclude=shown,
    )
    version = _usual_version(confident_rows)
    doubt_below, rule = _doubt_cut(
        session=session, where=window, version=version, thresholds=model_thresholds or {}
    )
    doubtful: list[dict[str, Any]] = []
    if doubt_below is not None:
        doubtful_posts = _post_ids(
            session=session,
            where=and_(window, PostBrand.max_probability < doubt_below),
            order=[PostBrand.max_probability],
            limit=candidates,
        )
        doubtful = _distinct_posts(
            _best_rows(session=session, brand=brand, post_ids=doubtful_posts),
            limit=size,
            exclude=set(),
        )
    return Gallery(
        confident=_items(session=session, rows=chosen),
        sample=_items(session=session, rows=sample),
        doubtful=_items(session=session, rows=doubtful),
        doubt_below=doubt_below,
        doubt_rule=rule,
        seed=seed,
    )


def _window(*, brand: str, since: date | None, until: date | None) -> Any:
    """The brand's posts in the window, on the per-post summary's (brand, day) index."""
    conditions = [PostBrand.brand == brand]
    if since is not None:
        conditions.append(PostBrand.posted_day >= since)
    if until is not None:
        conditions.append(PostBrand.posted_day <= until)
    return and_(*conditions)


def _post_ids(*, session: Session, where: Any, order: Sequence[Any], limit: int) -> list[int]:
    """Post ids in ``order`` (ties by id), from the per-post summary."""
    query = select(PostBrand.post_id).where(where).order_by(*order, PostBrand.post_id).limit(limit)
    return list(session.scalars(query))


def _sampled_post_ids(
    *, session: Session, brand: str, since: date | None, until: date | None, count: int, seed: int
) -> list[int]:
    """``count`` posts drawn at random (without repeats) from the brand's posts in the window.

    Every post is equally likely: a day is drawn in proportion to its posts (the daily summary
    knows how many), then one of that day's posts by its place in the day's order. The seed fixes
    the draw; no query reads more than one day of the brand's posts.
    """
    days = _posts_per_day(session=session, brand=brand, since=since, until=until)
    total = sum(posts for _, posts in days)
    if total == 0:
        return []
    draws = random.Random(seed).sample(range(total), min(count, total))
    chosen: list[int] = []
    for draw in draws:  # in the draw's own random order: the cards are not sorted by day
        day, place = _day_and_place(days, draw)
        post_id = session.scalar(
            select(PostBrand.post_id)
            .where(PostBrand.brand == brand, PostBrand.posted_day == day)
            .order_by(PostBrand.post_id)
            .offset(place)
            .limit(1)
        )
        if post_id is not None:
            chosen.append(post_id)
    return chosen


def _posts_per_day(
    *, session: Session, brand: str, since: date | None, until: date | None
) -> list[tuple[date, int]]:
    """(day, posts showing the brand) in the window, by day, from the daily summary."""
    conditions = [BrandPostDay.brand == brand]
    if since is not None:
        conditions.append(BrandPostDay.day >= since)
    if until is not None:
        conditions.append(BrandPostDay.day <= until)
    query = (
        select(BrandPostDay.day, func.sum(BrandPostDay.posts))
        .where(*conditions)
        .group_by(BrandPostDay.day)
        .order_by(BrandPostDay.day)
    )
    return [(as_date(day), int(posts)) for day, posts in session.execute(query) if posts]


def _day_and_place(days: Sequence[tuple[date, int]], draw: int) -> tuple[date, int]:
    """The day holding the ``draw``-th post (counting through the days in order) and its place."""
    for day, posts in days:
        if draw < posts:
            return day, draw
        draw -= posts
    raise ValueError("draw beyond the posts counted")


def _best_rows(*, session: Session, brand: str, post_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Each post's most probable detection of ``brand``, in the order of ``post_ids``."""
    if not post_ids:
        return []
    rows = _rows(
        session=session,
        where=and_(post_detections.c.brand == brand, post_detections.c.post_id.in_(post_ids)),
        order=[desc(post_detections.c.probability)],
    )
    best: dict[int, dict[str, Any]] = {}
    for row in rows:
        best.setdefault(row["post_id"], row)
    return [best[post_id] for post_id in post_ids if post_id in best]


def _rows(*, session: Session, where: Any, order: Sequence[Any]) -> list[dict[str, Any]]:
    """Detections with their post and image, in ``order``."""
    view = post_detections
    query = (
        select(
            view.c.detection_id,
            view.c.post_id,
            view.c.image_id,
            view.c.platform,
            view.c.author_handle,
            view.c.author_name,
            view.c.post_url,
            view.c.post_text,
            view.c.posted_at,
            view.c.brand,
            view.c.probability,
            view.c.model_version,
            view.c.x1,
            view.c.y1,
            view.c.x2,
            view.c.y2,
            Image.url.label("image_url"),
            Image.width.label("image_width"),
            Image.height.label("image_height"),
        )
        .join(Image, Image.id == view.c.image_id)
        .where(where)
        .order_by(*order, view.c.detection_id, view.c.post_id)
    )
    return [dict(row._mapping) for row in session.execute(query)]


def _distinct_posts(
    rows: Iterable[dict[str, Any]], *, limit: int, exclude: set[int]
) -> list[dict[str, Any]]:
    """At most one card per post and per photo: a photo shared by many posts is shown once.

    ``exclude`` holds images shown already (in the most confident set).
    """
    chosen: list[dict[str, Any]] = []
    posts: set[int] = set()
    images: set[int] = set()
    for row in rows:
        if len(chosen) >= limit:
            break
        if row["image_id"] in exclude or row["post_id"] in posts or row["image_id"] in images:
            continue
        chosen.append(row)
        posts.add(row["post_id"])
        images.add(row["image_id"])
    return chosen


def _usual_version(rows: Sequence[dict[str, Any]]) -> str | None:
    """The model version most of these detections come from (ties: the name first in order)."""
    counts = Counter(row["model_version"] for row in rows)
    if not counts:
        return None
    return min(counts, key=lambda version: (-counts[version], version))


def _doubt_cut(
    *, session: Session, where: Any, version: str | None, thresholds: Mapping[str, float]
) -> tuple[float | None, str]:
    """Probability below which a post's detection is doubtful, and the rule that set it, in words.

    ``version`` is the model most of the brand's most confident detections come from.
    """
    if version is None:
        return None, "no detections"
    if version in thresholds:
        threshold = thresholds[version]
        cut = threshold + (1.0 - threshold) * DOUBT_SHARE
        return cut, (
            f"probability below {cut:.3f}: in the lower half of the way from model {version}'s "
            f"threshold {threshold:.3f} to 1 (detections that barely cleared it)"
        )
    count = session.scalar(select(func.count()).select_from(PostBrand).where(where)) or 0
    decile = session.scalar(
        select(PostBrand.max_probability)
        .where(where)
        .order_by(PostBrand.max_probability)
        .offset(count // 10)
        .limit(1)
    )
    if decile is None:
        return None, "no detections"
    return float(decile), (
        f"probability below {float(decile):.2f}: the lowest tenth of this brand's posts "
        f"(model {version}'s threshold is not known here)"
    )


def _items(*, session: Session, rows: Sequence[dict[str, Any]]) -> list[GalleryItem]:
    return [_item(session=session, row=row) for row in rows]


def _item(*, session: Session, row: dict[str, Any]) -> GalleryItem:
    evidence = evidence_image(session=session, image_id=row["image_id"])
    corners = (row["x1"], row["y1"], row["x2"], row["y2"])
    box: Box | None = None
    if all(value is not None for value in corners):
        box = (int(corners[0]), int(corners[1]), int(corners[2]), int(corners[3]))
    return GalleryItem(
        detection_id=row["detection_id"],
        post_id=row["post_id"],
        image_id=row["image_id"],
        platform=row["platform"],
        author=row["author_handle"],
        author_name=row["author_name"],
        author_url=account_url(row["platform"], row["author_handle"]),
        post_url=row["post_url"],
        posted_at=_aware(row["posted_at"]),
        text_excerpt=excerpt(row["post_text"]),
        brand=row["brand"],
        probability=float(row["probability"]),
        model_version=row["model_version"],
        box=box,
        image_width=row["image_width"],
        image_height=row["image_height"],
        image_url=row["image_url"],
        image_bytes=evidence.data if evidence else None,
        image_media_type=evidence.media_type if evidence else None,
    )


def excerpt(text: str | None, limit: int = EXCERPT_CHARACTERS) -> str:
    """The post's text on one line, cut at a word boundary near ``limit`` characters."""
    flat = re.sub(r"\s+", " ", text or "").strip()
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] or flat[:limit]
    return cut.rstrip() + "…"


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; the store writes UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


__all__ = [
    "EvidenceImage",
    "Gallery",
    "GalleryItem",
    "account_url",
    "build_gallery",
    "evidence_image",
    "excerpt",
]
