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
from typing import Any, cast

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    distinct,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.domain import CollectedPost, Detection
from monitor.exceptions import ConfigurationError, StorageError, UnknownSourceError
from monitor.storage import summaries
from monitor.storage.counting import KNOWN_BRANDS_SQL
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
    """Delete a source and, through cascades, its posts and their detections.

    The summaries lose exactly what the source's posts and detections counted: every image they
    touch, and every post showing those images, is refreshed around the delete.
    """
    source = get_source(session=session, name=name)
    linked = select(PostImage.image_id).join(Post).where(Post.source_id == source.id)
    detected = select(DetectionRow.image_id).where(DetectionRow.source_id == source.id)
    image_ids = sorted(set(session.scalars(linked.union(detected))))
    post_ids = {
        post_id for _, post_id, _ in summaries.posts_showing(session=session, image_ids=image_ids)
    }

    def delete() -> None:
        session.delete(source)

    summaries.refresh(session=session, image_ids=image_ids, post_ids=post_ids, change=delete)


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
    """Stage new posts and their images; posts and image URLs already stored are reused.

    A new post showing an image stored before may show an already classified image: those links
    are made last, inside a summaries refresh, so the post counts for the brands the image shows.
    """
    stored = StoredPosts()
    reused: list[PostImage] = []
    for collected in posts:
        if _post_exists(session=session, collected=collected):
            continue
        post = _insert_post(session=session, source=source, collected=collected, now=now)
        if post is None:
            continue
        stored.new_post_ids.append(post.id)
        for position, image_url in enumerate(dict.fromkeys(collected.image_urls)):
            image, created = _get_or_create_image(session=session, url=image_url, now=now)
            link = PostImage(post_id=post.id, image_id=image.id, position=position)
            if created:
                stored.new_image_ids.append(image.id)
                session.add(link)
            else:
                reused.append(link)
    session.flush()
    if reused:
        _link_reused_images(session=session, links=reused)
    return stored


def _link_reused_images(*, session: Session, links: Sequence[PostImage]) -> None:
    """Link new posts to images stored before; refresh the summaries if any is classified.

    The images are locked first, so a worker classifying one of them at this moment either commits
    before (and this refresh counts the new posts) or waits and sees the links.
    """
    image_ids = sorted({link.image_id for link in links})
    summaries.lock_rows(session=session, table="images", ids=image_ids)
    classified = session.scalar(
        select(func.count())
        .select_from(DetectionRow)
        .where(DetectionRow.image_id.in_(image_ids), DetectionRow.current)
    )

    def link_all() -> None:
        session.add_all(links)

    if not classified:
        link_all()
        session.flush()
        return
    summaries.refresh(
        session=session,
        image_ids=image_ids,
        post_ids={link.post_id for link in links},
        change=link_all,
    )


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
    """Fetched images that this model version has not classified yet, with their bytes.

    Images whose full bytes were let go after classification are not among them: a newer model
    gets them again through ``queue_for_reclassification`` (fetched anew).
    """
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
            ImageData.data.is_not(None),
        )
        .order_by(Image.id)
    )
    return [(image, data) for image, data in rows.tuples() if data is not None]


def keep_evidence(
    *, session: Session, thumbnails: dict[int, bytes | None], drop_full_bytes: bool
) -> None:
    """Store each classified image's thumbnail; let its full bytes go unless they are retained."""
    if not thumbnails:
        return
    table = cast(Table, ImageData.__table__)
    values: dict[str, Any] = {"thumbnail": bindparam("new_thumbnail")}
    if drop_full_bytes:
        values["data"] = None
    session.execute(
        update(table).where(table.c.image_id == bindparam("target_id")).values(values),
        [
            {"target_id": image_id, "new_thumbnail": thumbnail}
            for image_id, thumbnail in sorted(thumbnails.items())
        ],
    )


def drop_expired_image_bytes(*, session: Session, classified_before: datetime) -> int:
    """Let go of the full bytes of images classified before ``classified_before``; how many."""
    expired = select(Image.id).where(
        Image.state == ImageState.CLASSIFIED, Image.classified_at < classified_before
    )
    result = session.execute(
        update(ImageData)
        .where(ImageData.image_id.in_(expired), ImageData.data.is_not(None))
        .values(data=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def queue_for_reclassification(*, session: Session, now: datetime) -> tuple[list[int], list[int]]:
    """Put every classified image back in line for a newer model: (to fetch again, to classify).

    Images whose bytes are still kept go straight to classification; the others are fetched
    again first. Their current classification keeps counting until the new one is written.
    """
    kept = select(ImageData.image_id).where(ImageData.data.is_not(None))
    classified = Image.state == ImageState.CLASSIFIED
    to_classify = list(
        session.scalars(select(Image.id).where(classified, Image.id.in_(kept)).order_by(Image.id))
    )
    to_fetch = list(
        session.scalars(
            select(Image.id).where(classified, Image.id.not_in(kept)).order_by(Image.id)
        )
    )
    session.execute(
        update(Image)
        .where(Image.id.in_(to_fetch))
        .values(state=ImageState.QUEUED, queued_at=now, attempts=0)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Image)
        .where(Image.id.in_(to_classify))
        .values(state=ImageState.FETCHED, fetched_at=now)
        .execution_options(synchronize_session=False)
    )
    return to_fetch, to_classify


def save_classification(
    *,
    session: Session,
    image: Image,
    model_version: str,
    detections: Sequence[Detection],
    now: datetime,
) -> bool:
    """Write one model version's verdict on an image once; False when it was already written."""
    return save_classifications(
        session=session, verdicts=[(image, detections)], model_version=model_version, now=now
    )[0]


def save_classifications(
    *,
    session: Session,
    verdicts: Sequence[tuple[Image, Sequence[Detection]]],
    model_version: str,
    now: datetime,
) -> list[bool]:
    """Write one model version's verdicts on a batch of images; False where already written.

    The images are locked first, so a re-delivered task waiting on the lock finds the rows written
    and writes nothing. A new classification becomes the image's current one unless the current one
    is newer; the summaries move from the old current verdict to the new one in the same
    transaction.
    """
    image_ids = sorted({image.id for image, _ in verdicts})
    summaries.lock_rows(session=session, table="images", ids=image_ids)
    done = set(
        session.scalars(
            select(Classification.image_id).where(
                Classification.model_version == model_version,
                Classification.image_id.in_(image_ids),
            )
        )
    )
    written: list[bool] = []
    to_write: dict[int, tuple[Image, Sequence[Detection]]] = {}
    for image, detections in verdicts:
        fresh = image.id not in done and image.id not in to_write
        written.append(fresh)
        if fresh:
            to_write[image.id] = (image, detections)
    if not to_write:
        return written
    shown = summaries.posts_showing(session=session, image_ids=to_write)
    first_posts: dict[int, tuple[int, int]] = {}
    for image_id, post_id, source_id in sorted(shown):
        first_posts.setdefault(image_id, (post_id, source_id))
    missing = set(to_write) - set(first_posts)
    if missing:
        raise StorageError(f"images {sorted(missing)} are shown in no post; nothing stored")

    def write() -> None:
        _write_classifications(
            session=session,
            verdicts=list(to_write.values()),
            first_posts=first_posts,
            model_version=model_version,
            now=now,
        )

    summaries.refresh(
        session=session,
        image_ids=to_write,
        post_ids={post_id for _, post_id, _ in shown},
        change=write,
    )
    return written


def _write_classifications(
    *,
    session: Session,
    verdicts: Sequence[tuple[Image, Sequence[Detection]]],
    first_posts: dict[int, tuple[int, int]],
    model_version: str,
    now: datetime,
) -> None:
    """Insert the classifications and detections; mark the newest verdict's detections current."""
    image_ids = [image.id for image, _ in verdicts]
    newest = {
        image_id: classified_at
        for image_id, classified_at in session.execute(
            select(Classification.image_id, func.max(Classification.classified_at))
            .where(Classification.image_id.in_(image_ids))
            .group_by(Classification.image_id)
        ).tuples()
    }
    replacing = {
        image_id
        for image_id in image_ids
        if newest.get(image_id) is None or _aware(newest[image_id]) <= _aware(now)
    }
    if replacing:
        session.execute(
            update(DetectionRow)
            .where(DetectionRow.image_id.in_(sorted(replacing)), DetectionRow.current)
            .values(current=False)
            .execution_options(synchronize_session=False)
        )
    classifications = [
        Classification(
            image_id=image.id,
            model_version=model_version,
            classified_at=now,
            detection_count=len(detections),
        )
        for image, detections in verdicts
    ]
    session.add_all(classifications)
    session.flush()
    rows = []
    for (image, detections), classification in zip(verdicts, classifications, strict=True):
        post_id, source_id = first_posts[image.id]
        for rank, detection in enumerate(detections):
            box = detection.box or (None, None, None, None)
            rows.append(
                {
                    "classification_id": classification.id,
                    "rank": rank,
                    "image_id": image.id,
                    "post_id": post_id,
                    "source_id": source_id,
                    "model_version": model_version,
                    "brand": detection.brand,
                    "probability": float(detection.probability),
                    "x1": box[0],
                    "y1": box[1],
                    "x2": box[2],
                    "y2": box[3],
                    "detected_at": now,
                    "current": image.id in replacing,
                }
            )
        image.state = ImageState.CLASSIFIED
        image.classified_at = now
        image.error = None
    if rows:
        session.execute(insert(DetectionRow), rows)


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
    """Every brand that has at least one detection, in order.

    One index probe per brand on ``(brand, probability)`` (a skip scan written as a recursive
    query), not a scan of every detection.
    """
    return list(session.scalars(text(KNOWN_BRANDS_SQL)))


def brand_post_counts(*, session: Session) -> list[tuple[str, int]]:
    """Brands by the number of images their current classification finds them in, most first."""
    count = func.count(distinct(DetectionRow.image_id))
    rows = session.execute(
        select(DetectionRow.brand, count)
        .where(DetectionRow.current)
        .group_by(DetectionRow.brand)
        .order_by(count.desc())
    )
    return [(brand, n) for brand, n in rows.tuples()]
