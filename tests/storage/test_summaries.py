"""The summaries under re-classification and real concurrent PostgreSQL sessions."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from monitor.analytics.report import build_report
from monitor.config import Settings
from monitor.domain import CollectedPost, Detection
from monitor.pipeline import Services
from monitor.storage import repository
from monitor.storage.db import session_factory, session_scope
from monitor.storage.tables import Image
from tests.analytics import reference
from tests.analytics.test_exact import assert_exact, build_random_store
from tests.conftest import FixedClock, _truncate

NOW = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


def _post(external_id: str, *images: str, author: str = "ana", text: str = "") -> CollectedPost:
    return CollectedPost(
        platform="social",
        external_id=external_id,
        url=f"https://example.social/{external_id}",
        author_handle=author,
        author_followers=100,
        text=text,
        created_at=NOW,
        image_urls=tuple(f"https://img/{name}" for name in images),
    )


def _store(services: Services, *posts: CollectedPost) -> dict[str, int]:
    """Store the posts; returns image ids by file name."""
    with session_scope(services.sessions) as session:
        if not repository.list_sources(session=session):
            repository.add_source(
                session=session, name="src", kind="fake", options={}, every_seconds=None, now=NOW
            )
        source = repository.get_source(session=session, name="src")
        repository.store_posts(session=session, source=source, posts=list(posts), now=NOW)
    with session_scope(services.sessions) as session:
        return {image.url.rsplit("/", 1)[1]: image.id for image in session.scalars(select(Image))}


def _classify(
    services: Services, image_id: int, version: str, *found: tuple[str, float], at: datetime = NOW
) -> bool:
    with session_scope(services.sessions) as session:
        image = session.get(Image, image_id)
        assert image is not None
        return repository.save_classification(
            session=session,
            image=image,
            model_version=version,
            detections=[Detection(brand, p, None) for brand, p in found],
            now=at,
        )


def _report(services: Services, brand: str) -> dict[str, Any]:
    with session_scope(services.sessions) as session:
        return build_report(session=session, brand=brand).to_dict()


def test_a_newer_model_moves_the_counts(services: Services) -> None:
    images = _store(services, _post("1", "a.jpg"), _post("2", "a.jpg", "b.jpg", author="bob"))
    _classify(services, images["a.jpg"], "v1", ("bmw", 0.9))
    _classify(services, images["b.jpg"], "v1", ("nike", 0.7))
    assert (_report(services, "bmw")["detections"], _report(services, "bmw")["posts"]) == (1, 2)
    assert _report(services, "nike")["co_endorsed_brands"] == [{"brand": "bmw", "accounts": 1}]

    later = NOW + timedelta(days=1)
    _classify(services, images["a.jpg"], "v2", ("nike", 0.95), ("nike", 0.6), at=later)
    bmw, nike = _report(services, "bmw"), _report(services, "nike")
    assert (bmw["detections"], bmw["posts"], bmw["top_authors"]) == (0, 0, [])
    assert (nike["detections"], nike["posts"]) == (3, 2)
    assert nike["co_endorsed_brands"] == []
    assert [row["detections"] for row in nike["probability_histogram"]] == [0, 0, 1, 1, 0, 1]
    with session_scope(services.sessions) as session:
        assert reference.stored_views(session) == reference.views(reference.load(session))


def test_an_older_verdict_delivered_late_does_not_replace_the_newer(services: Services) -> None:
    images = _store(services, _post("1", "a.jpg"))
    _classify(services, images["a.jpg"], "v2", ("nike", 0.9), at=NOW + timedelta(days=1))
    _classify(services, images["a.jpg"], "v1", ("bmw", 0.9), at=NOW)
    assert _report(services, "nike")["posts"] == 1
    assert _report(services, "bmw")["posts"] == 0


def test_a_post_collected_later_counts_for_a_classified_image(services: Services) -> None:
    images = _store(services, _post("1", "a.jpg"))
    _classify(services, images["a.jpg"], "v1", ("bmw", 0.9))
    later = CollectedPost(
        platform="social",
        external_id="2",
        url=None,
        author_handle="cy",
        text="BMW!",
        created_at=NOW + timedelta(days=3),
        image_urls=("https://img/a.jpg",),
    )
    _store(services, later)
    bmw = _report(services, "bmw")
    assert (bmw["detections"], bmw["posts"], bmw["image_only_posts"]) == (1, 2, 1)
    assert [row["day"] for row in bmw["by_day"]] == ["2026-11-16", "2026-11-19"]


# --- real concurrent PostgreSQL sessions -------------------------------------------------------


@pytest.fixture
def pg_services(
    postgres_url: str, make_settings: Callable[..., Settings], clock: FixedClock
) -> Services:
    _truncate(postgres_url)
    settings = make_settings(database_url=postgres_url)
    return Services(settings=settings, sessions=session_factory(postgres_url), clock=clock)


def _waiting_on_a_lock(services: Services, pid: int) -> bool:
    with session_scope(services.sessions) as session:
        return bool(
            session.scalar(
                text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": pid},
            )
        )


def test_a_second_writer_of_the_same_brand_day_waits_and_adds(pg_services: Services) -> None:
    """Worker A writes and holds its transaction; worker B, same brand, day and account, waits."""
    services = pg_services
    images = _store(
        services, _post("1", "a.jpg"), _post("2", "b.jpg"), _post("3", "a.jpg", "b.jpg")
    )
    first = services.sessions()
    with first.begin():
        repository.save_classification(
            session=first,
            image=first.get(Image, images["a.jpg"]),  # type: ignore[arg-type]
            model_version="v1",
            detections=[Detection("bmw", 0.9, None)],
            now=NOW,
        )
        second_pid: list[int] = []
        started = threading.Event()
        errors: list[BaseException] = []

        def second_worker() -> None:
            try:
                with session_scope(services.sessions) as session:
                    second_pid.append(session.scalar(text("SELECT pg_backend_pid()")))
                    started.set()
                    repository.save_classification(
                        session=session,
                        image=session.get(Image, images["b.jpg"]),  # type: ignore[arg-type]
                        model_version="v1",
                        detections=[Detection("bmw", 0.8, None), Detection("nike", 0.7, None)],
                        now=NOW,
                    )
            except BaseException as exc:  # reported in the main thread
                errors.append(exc)
                started.set()

        worker = threading.Thread(target=second_worker)
        worker.start()
        assert started.wait(30)
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while not errors and not _waiting_on_a_lock(services, second_pid[0]):
            assert datetime.now(UTC) < deadline, "the second writer never waited for the first"
            threading.Event().wait(0.02)
    first.close()
    worker.join(30)
    assert not errors
    bmw = _report(services, "bmw")
    assert (bmw["detections"], bmw["posts"]) == (2, 3)
    assert bmw["top_authors"][0]["posts"] == 3
    assert _report(services, "nike")["co_endorsed_brands"] == [{"brand": "bmw", "accounts": 1}]
    assert_exact(services)


def test_a_task_delivered_twice_at_once_is_written_once(pg_services: Services) -> None:
    services = pg_services
    images = _store(services, _post("1", "a.jpg"), _post("2", "a.jpg", author="bob"))
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def deliver() -> None:
        barrier.wait()
        results.append(_classify(services, images["a.jpg"], "v1", ("bmw", 0.9)))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == [False, True]
    bmw = _report(services, "bmw")
    assert (bmw["detections"], bmw["posts"], len(bmw["top_authors"])) == (1, 2, 2)


def test_workers_writing_at_once_lose_no_count(pg_services: Services) -> None:
    """Four workers classify interleaved batches of one random store at the same moment."""
    services = pg_services
    build_random_store(services, seed=3)
    with session_scope(services.sessions) as session:
        image_ids = list(session.scalars(select(Image.id).order_by(Image.id)))
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            barrier.wait()
            for start in range(offset * 3, len(image_ids), 12):
                batch = image_ids[start : start + 3]
                with session_scope(services.sessions) as session:
                    repository.save_classifications(
                        session=session,
                        verdicts=[
                            (
                                session.get(Image, image_id),  # type: ignore[misc]
                                [Detection("bmw", 0.9, None), Detection("acme", 0.55, None)]
                                if image_id % 2
                                else [Detection("globex", 0.75, None)],
                            )
                            for image_id in batch
                        ],
                        model_version="v3",
                        now=NOW + timedelta(days=60),
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert_exact(services)
