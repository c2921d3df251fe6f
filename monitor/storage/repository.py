"""Repository functions: keyword-only, an explicit session, never a commit.

The caller owns the unit of work (``session_scope``); these functions only read and stage changes.
Writes that could race with another worker (the same image in two posts collected at once, the same
classification delivered twice) use savepoints and unique keys so the loser simply finds the row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, distinct, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.domain import CollectedPost, Detection
from monitor.exceptions import ConfigurationError, UnknownSourceError
from monitor.storage.tables import (
    Classification,
    CollectionRun,
    DetectionRow,
    Image,
    ImageData,
    ImageState,
    Post,
    PostImage,
    Source,
)


def url_hash(url: str) -> str:
    """The key an image URL is stored under (URLs can be longer than an index allows)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


# --- sources -----------------------------------------------------------------------------------


def add_source(
    *,
    session: Session,
    name: str,
    kind: str,
    options: dict[str, Any],
    every_seconds: int | None,
    now: datetime,
) -> Source:
    """Stage a new source; a taken name is a ConfigurationError."""
    if session.scalar(select(Source.id).where(Source.name == name)) is not None:
        raise ConfigurationError(f"a source named {name!r} already exists")
    source = Source(
        name=name,
        kind=kind,
        options=options,
        every_seconds=every_seconds,
        created_at=now,
        consecutive_failures=0,
    )
    session.add(source)
    session.flush()
    return source


def get_source(*, session: Session, name: str) -> Source:
    """The source called ``name``, or UnknownSourceError listing the known ones."""
    source = session.scalar(select(Source).where(Source.name == name))
    if source is None:
        known = session.scalars(select(Source.name).order_by(Source.name)).all()
        listing = ", ".join(known) if known else "none yet (add one with `monitor sources add`)"
        raise UnknownSourceError(f"no source named {name!r}; known sources: {listing}")
    return source


def list_sources(*, session: Session) -> list[Source]:
    """Every source, by name."""
    return list(session.scalars(select(Source).order_by(Source.name)))


def remove_source(*, session: Session, name: str) -> None:
    """Delete a source and, through cascades, its posts and their detections."""
    session.delete(get_source(session=session, name=name))


def claim_source(*, session: Session, source_id: int, now: datetime, lock_seconds: int) -> bool:
    """Take the source's collection lock unless another run holds it; True when taken.

    One conditional UPDATE, so two beats or workers racing for the same source cannot both win; the
    lock expires by itself if its holder dies.
    """
    result = session.execute(
        update(Source)
        .where(
            Source.id == source_id,
            or_(Source.locked_until.is_(None), Source.locked_until < now),
        )
        .values(locked_until=now + timedelta(seconds=lock_seconds))
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release_source(*, session: Session, source_id: int) -> None:
    """Give back the collection lock."""
    session.execute(
        update(Source)
        .where(Source.id == source_id)
        .values(locked_until=None)
        .execution_options(synchronize_session=False)
    )


def due_sources(*, session: Session, now: datetime) -> list[Source]:
    """Scheduled sources whose interval has passed since their last collection."""
    scheduled = session.scalars(
        select(Source).where(Source.every_seconds.is_not(None)).order_by(Source.id)
    )
    return [
        source
        for source in scheduled
        if source.last_collected_at is None
        or _aware(source.last_collected_at) + timedelta(seconds=source.every_seconds or 0) <= now
    ]


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for UTC values; make them comparable."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- collection --------------------------------------------------------------------------------


@dataclass
class StoredPosts:
    """What storing a batch added: only new posts and images not seen before."""

    new_post_ids: list[int] = field(default_factory=list)
    new_image_ids: list[int] = field(default_factory=list)


def store_posts(
    *, session: Session, source: Source, posts: Sequence[CollectedPost], now: datetime
) -> StoredPosts:
    """Stage new posts and their images; posts and image URLs already stored are reused."""
    stored = StoredPosts()
    for collected in posts:
        if _post_exists(session=session, collected=collected):
            continue
        post = _insert_post(session=session, source=source, collected=collected, now=now)
        if post is None:
            continue
        stored.new_post_ids.append(post.id)
        for position, image_url in enumerate(dict.fromkeys(collected.image_urls)):
            image, created = _get_or_create_image(session=session, url=image_url, now=now)
            if created:
                stored.new_image_ids.append(image.id)
            session.add(PostImage(post_id=post.id, image_id=image.id, position=position))
    session.flush()
    return stored


def _post_exists(*, session: Session, collected: CollectedPost) -> bool:
    return (
        session.scalar(
            select(Post.id).where(
                Post.platform == collected.platform, Post.external_id == collected.external_id
            )
        )
        is not None
    )


def _insert_post(
    *, session: Session, source: Source, collected: CollectedPost, now: datetime
) -> Post | None:
    post = Post(
        source_id=source.id,
        platform=collected.platform,
        external_id=collected.external_id,
        url=collected.url,
        author_handle=collected.author_handle,
        author_name=collected.author_name,
        author_followers=collected.author_followers,
        text=collected.text,
        language=collected.language,
        reposts=collected.reposts,
        created_at=collected.created_at,
        collected_at=now,
    )
    try:
        with session.begin_nested():
            session.add(post)
    except IntegrityError:
        return None  # another collector stored the same post a moment ago
    return post


def _get_or_create_image(*, session: Session, url: str, now: datetime) -> tuple[Image, bool]:
    key = url_hash(url)
    existing = session.scalar(select(Image).where(Image.url_hash == key))
    if existing is not None:
        return existing, False
    image = Image(url_hash=key, url=url, state=ImageState.QUEUED, attempts=0, queued_at=now)
    try:
        with session.begin_nested():
            session.add(image)
    except IntegrityError:
        return session.scalars(select(Image).where(Image.url_hash == key)).one(), False
    return image, True


def record_run(
    *,
    session: Session,
    source: Source,
    started_at: datetime,
    finished_at: datetime,
    posts_seen: int,
    stored: StoredPosts | None,
    error: str | None,
    cursor: dict[str, Any] | None,
) -> CollectionRun:
    """Record a collection run on the source: its health, its cursor, and a history row."""
    failed = error is not None
    run = CollectionRun(
        source_id=source.id,
        started_at=started_at,
        finished_at=finished_at,
        status="failed" if failed else "ok",
        posts_seen=posts_seen,
        posts_new=len(stored.new_post_ids) if stored else 0,
        images_new=len(stored.new_image_ids) if stored else 0,
        error=error,
    )
    session.add(run)
    source.last_collected_at = finished_at
    source.last_status = run.status
    source.last_error = error
    source.consecutive_failures = source.consecutive_failures + 1 if failed else 0
    if cursor is not None and not failed:
        source.cursor = cursor
    session.flush()
    return run


# --- images ------------------------------------------------------------------------------------


def images_in_state(*, session: Session, image_ids: Sequence[int], state: str) -> list[Image]:
    """The given images that are (still) in ``state``, in id order."""
    if not image_ids:
        return []
    return list(
        session.scalars(
            select(Image).where(Image.id.in_(image_ids), Image.state == state).order_by(Image.id)
        )
    )


def save_fetched_image(
    *,
    session: Session,
    image: Image,
    data: bytes,
    content_type: str | None,
    width: int,
    height: int,
    now: datetime,
) -> None:
    """Keep the bytes and mark the image ready for classification."""
    existing = session.get(ImageData, image.id)
    if existing is None:
        session.add(ImageData(image_id=image.id, data=data))
    else:
        existing.data = data
    image.state = ImageState.FETCHED
    image.error = None
    image.content_type = content_type
    image.byte_size = len(data)
    image.width = width
    image.height = height
    image.sha256 = hashlib.sha256(data).hexdigest()
    image.fetched_at = now


def mark_image_failed(*, session: Session, image: Image, reason: str) -> None:
    """An image that cannot be used: keep why, and stop trying."""
    image.state = ImageState.FAILED
    image.error = reason[:2000]


def claim_images_for_fetch(*, session: Session, images: Sequence[Image], now: datetime) -> None:
    """Count a fetch attempt on each image before it starts, and restart its staleness clock.

    Counting at the start, not at the end, is what lets a batch that crashed its worker be told
    apart from a fresh one when it is delivered again: its images already carry an attempt.
    """
    for image in images:
        image.attempts += 1
        image.queued_at = now


def note_image_attempt(*, session: Session, image: Image, reason: str) -> int:
    """A transient failure: keep why and keep the image queued; returns the attempts so far.

    The attempt itself was counted when it started (``claim_images_for_fetch``).
    """
    image.error = reason[:2000]
    return image.attempts


def images_by_id(*, session: Session, image_ids: Sequence[int]) -> dict[int, Image]:
    """The given images by id (missing ids are left out)."""
    if not image_ids:
        return {}
    return {
        image.id: image for image in session.scalars(select(Image).where(Image.id.in_(image_ids)))
    }


def images_waiting_to_retry(*, session: Session, limit: int) -> list[Image]:
    """Queued images that failed for a passing reason and wait for another try, oldest first."""
    return list(
        session.scalars(
            select(Image)
            .where(Image.state == ImageState.QUEUED, Image.attempts > 0, Image.error.is_not(None))
            .order_by(Image.queued_at)
            .limit(limit)
        )
    )


def count_images_waiting_to_retry(*, session: Session) -> int:
    """How many queued images wait for another try after a passing failure."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Image)
            .where(Image.state == ImageState.QUEUED, Image.attempts > 0, Image.error.is_not(None))
        )
        or 0
    )


def fetched_images_to_classify(
    *, session: Session, image_ids: Sequence[int], model_version: str
) -> list[tuple[Image, bytes]]:
    """Fetched images that this model version has not classified yet, with their bytes."""
    if not image_ids:
        return []
    already = select(Classification.image_id).where(
        Classification.model_version == model_version, Classification.image_id.in_(image_ids)
    )
    rows = session.execute(
        select(Image, ImageData.data)
        .join(ImageData, ImageData.image_id == Image.id)
        .where(
            Image.id.in_(image_ids),
            Image.state.in_([ImageState.FETCHED, ImageState.CLASSIFIED]),
            Image.id.not_in(already),
        )
        .order_by(Image.id)
    )
    return [(image, data) for image, data in rows.tuples()]


def save_classification(
    *,
    session: Session,
    image: Image,
    model_version: str,
    detections: Sequence[Detection],
    now: datetime,
) -> bool:
    """Write one model version's verdict on an image once; False when it was already written."""
    classification = Classification(
        image_id=image.id,
        model_version=model_version,
        classified_at=now,
        detection_count=len(detections),
    )
    try:
        with session.begin_nested():
            session.add(classification)
            session.flush()
    except IntegrityError:
        return False
    source_post = _source_post(session=session, image_id=image.id)
    for rank, detection in enumerate(detections):
        box = detection.box or (None, None, None, None)
        session.add(
            DetectionRow(
                classification_id=classification.id,
                rank=rank,
                image_id=image.id,
                post_id=source_post.id,
                source_id=source_post.source_id,
                model_version=model_version,
                brand=detection.brand,
                probability=float(detection.probability),
                x1=box[0],
                y1=box[1],
                x2=box[2],
                y2=box[3],
                detected_at=now,
            )
        )
    image.state = ImageState.CLASSIFIED
    image.classified_at = now
    image.error = None
    return True


def _source_post(*, session: Session, image_id: int) -> Post:
    """The first post that brought the image (detections name it; views fan out to all posts)."""
    return session.scalars(
        select(Post)
        .join(PostImage)
        .where(PostImage.image_id == image_id)
        .order_by(Post.id)
        .limit(1)
    ).one()


def stale_image_ids(*, session: Session, state: str, older_than: datetime) -> list[int]:
    """Images left in ``state`` since before ``older_than`` (their task was likely lost)."""
    timestamp = Image.queued_at if state == ImageState.QUEUED else Image.fetched_at
    return list(
        session.scalars(
            select(Image.id)
            .where(and_(Image.state == state, timestamp <= older_than))
            .order_by(Image.id)
        )
    )


def touch_images(*, session: Session, image_ids: Sequence[int], state: str, now: datetime) -> None:
    """Restart the staleness clock of re-queued images."""
    column = "queued_at" if state == ImageState.QUEUED else "fetched_at"
    session.execute(
        update(Image)
        .where(Image.id.in_(image_ids), Image.state == state)
        .values({column: now})
        .execution_options(synchronize_session=False)
    )


# --- status ------------------------------------------------------------------------------------


def image_state_counts(*, session: Session) -> dict[str, int]:
    """How many images are in each state (every state listed, zero included)."""
    counts = dict.fromkeys(ImageState.ALL, 0)
    for state, count in session.execute(select(Image.state, func.count()).group_by(Image.state)):
        counts[state] = count
    return counts


def count_posts(*, session: Session) -> int:
    """How many posts are stored."""
    return session.scalar(select(func.count()).select_from(Post)) or 0


def count_detections(*, session: Session) -> int:
    """How many detection rows are stored."""
    return session.scalar(select(func.count()).select_from(DetectionRow)) or 0


def failed_images(*, session: Session, limit: int) -> list[Image]:
    """The most recent failed images with their reasons."""
    return list(
        session.scalars(
            select(Image)
            .where(Image.state == ImageState.FAILED)
            .order_by(Image.id.desc())
            .limit(limit)
        )
    )


def known_brands(*, session: Session) -> list[str]:
    """Every brand that has at least one detection."""
    return list(session.scalars(select(DetectionRow.brand).distinct().order_by(DetectionRow.brand)))


def brand_post_counts(*, session: Session) -> list[tuple[str, int]]:
    """Brands by the number of images they were found in, most first."""
    count = func.count(distinct(DetectionRow.image_id))
    rows = session.execute(
        select(DetectionRow.brand, count).group_by(DetectionRow.brand).order_by(count.desc())
    )
    return [(brand, n) for brand, n in rows.tuples()]
