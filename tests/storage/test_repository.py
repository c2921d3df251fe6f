"""Repository functions on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from monitor.domain import CollectedPost, Detection
from monitor.exceptions import ConfigurationError, UnknownSourceError
from monitor.pipeline import Services
from monitor.storage import repository
from monitor.storage.db import session_scope
from monitor.storage.tables import DetectionRow, Image, ImageState, Post, PostImage

NOW = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


def make_post(external_id: str, *images: str, author: str = "ana") -> CollectedPost:
    return CollectedPost(
        platform="test",
        external_id=external_id,
        url=f"https://example.social/{external_id}",
        author_handle=author,
        text="look at this",
        created_at=NOW,
        image_urls=images,
        author_followers=100,
    )


def add_source(services: Services, name: str = "src", every: int | None = None) -> None:
    with session_scope(services.sessions) as session:
        repository.add_source(
            session=session, name=name, kind="fake", options={}, every_seconds=every, now=NOW
        )


def test_a_post_seen_again_is_not_stored_again(services: Services) -> None:
    add_source(services)
    for _ in range(2):
        with session_scope(services.sessions) as session:
            source = repository.get_source(session=session, name="src")
            stored = repository.store_posts(
                session=session, source=source, posts=[make_post("1", "https://img/a.jpg")], now=NOW
            )
    assert stored.new_post_ids == [] and stored.new_image_ids == []
    with session_scope(services.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Post)) == 1


def test_the_same_image_in_two_posts_is_one_image_linked_twice(services: Services) -> None:
    add_source(services)
    with session_scope(services.sessions) as session:
        source = repository.get_source(session=session, name="src")
        stored = repository.store_posts(
            session=session,
            source=source,
            posts=[
                make_post("1", "https://img/a.jpg"),
                make_post("2", "https://img/a.jpg", "https://img/b.jpg"),
            ],
            now=NOW,
        )
    assert len(stored.new_post_ids) == 2
    assert len(stored.new_image_ids) == 2
    with session_scope(services.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Image)) == 2
        assert session.scalar(select(func.count()).select_from(PostImage)) == 3


def test_a_classification_is_written_once_per_model_version(services: Services) -> None:
    add_source(services)
    with session_scope(services.sessions) as session:
        source = repository.get_source(session=session, name="src")
        stored = repository.store_posts(
            session=session, source=source, posts=[make_post("1", "https://img/a.jpg")], now=NOW
        )
    detections = [Detection("acme", 0.9, (1, 2, 30, 40)), Detection("globex", 0.7, None)]
    results = []
    for _ in range(2):
        with session_scope(services.sessions) as session:
            image = session.get(Image, stored.new_image_ids[0])
            results.append(
                repository.save_classification(
                    session=session, image=image, model_version="v1", detections=detections, now=NOW
                )
            )
    assert results == [True, False]
    with session_scope(services.sessions) as session:
        rows = session.scalars(select(DetectionRow).order_by(DetectionRow.rank)).all()
        assert [(r.brand, r.x1, r.y2, r.model_version) for r in rows] == [
            ("acme", 1, 40, "v1"),
            ("globex", None, None, "v1"),
        ]
        assert rows[0].post_id == stored.new_post_ids[0]
        assert session.get(Image, stored.new_image_ids[0]).state == ImageState.CLASSIFIED


def test_only_one_claimant_gets_a_source_lock_until_it_expires(services: Services) -> None:
    add_source(services)
    with session_scope(services.sessions) as session:
        source_id = repository.get_source(session=session, name="src").id
    claims = []
    for moment in (NOW, NOW + timedelta(seconds=10), NOW + timedelta(seconds=901)):
        with session_scope(services.sessions) as session:
            claims.append(
                repository.claim_source(
                    session=session, source_id=source_id, now=moment, lock_seconds=900
                )
            )
    assert claims == [True, False, True]


def test_due_sources_follow_their_interval(services: Services) -> None:
    add_source(services, "hourly", every=3600)
    add_source(services, "manual", every=None)
    with session_scope(services.sessions) as session:
        assert [s.name for s in repository.due_sources(session=session, now=NOW)] == ["hourly"]
        source = repository.get_source(session=session, name="hourly")
        source.last_collected_at = NOW
    with session_scope(services.sessions) as session:
        assert repository.due_sources(session=session, now=NOW + timedelta(minutes=59)) == []
        due = repository.due_sources(session=session, now=NOW + timedelta(minutes=60))
        assert [s.name for s in due] == ["hourly"]


def test_names_are_unique_and_unknown_names_list_the_known(services: Services) -> None:
    add_source(services, "one")
    try:
        add_source(services, "one")
    except ConfigurationError as exc:
        assert "already exists" in str(exc)
    else:
        raise AssertionError("a duplicate name was accepted")
    with session_scope(services.sessions) as session:
        try:
            repository.get_source(session=session, name="two")
        except UnknownSourceError as exc:
            assert "known sources: one" in str(exc)
        else:
            raise AssertionError("an unknown source was found")


def test_claimed_attempts_and_images_waiting_to_retry(services: Services) -> None:
    add_source(services)
    with session_scope(services.sessions) as session:
        source = repository.get_source(session=session, name="src")
        stored = repository.store_posts(
            session=session,
            source=source,
            posts=[make_post("1", "https://img/a.jpg", "https://img/b.jpg", "https://img/c.jpg")],
            now=NOW,
        )
    first, second, third = stored.new_image_ids
    later = NOW + timedelta(minutes=5)
    with session_scope(services.sessions) as session:
        images = repository.images_by_id(session=session, image_ids=[first, second, third])
        repository.claim_images_for_fetch(
            session=session, images=[images[first], images[second]], now=later
        )
        assert (
            repository.note_image_attempt(session=session, image=images[first], reason="timed out")
            == 1
        )
    with session_scope(services.sessions) as session:
        waiting = repository.images_waiting_to_retry(session=session, limit=10)
        assert [(i.id, i.attempts, i.error) for i in waiting] == [(first, 1, "timed out")]
        assert repository.count_images_waiting_to_retry(session=session) == 1
        claimed = repository.images_by_id(session=session, image_ids=[second])[second]
        assert claimed.attempts == 1 and claimed.error is None  # tried, no outcome yet
        queued_at = claimed.queued_at
        assert (queued_at if queued_at.tzinfo else queued_at.replace(tzinfo=UTC)) == later
