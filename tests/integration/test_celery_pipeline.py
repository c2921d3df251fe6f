"""collect -> fetch -> classify -> report through real Celery workers, Redis and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.analytics.report import build_report
from monitor.collectors.base import validate_options
from monitor.config import load_settings
from monitor.inference.model_dir import read_metadata
from monitor.pipeline import Services
from monitor.queue import CeleryWorkQueue
from monitor.storage import repository
from monitor.storage.db import session_factory, session_scope
from monitor.storage.tables import Classification, DetectionRow, Image, ImageState
from tests.conftest import ServedFiles, _truncate, jpeg_bytes
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def pg_services(postgres_url: str, redis_url: str, tmp_path: Path) -> Services:
    _truncate(postgres_url)
    settings = load_settings(
        home=tmp_path / "home",
        database_url=postgres_url,
        broker_url=redis_url,
        allow_private_image_hosts=True,
    )
    return Services(settings=settings, sessions=session_factory(postgres_url))


def add_source(services: Services, posts: list[dict[str, object]]) -> None:
    with session_scope(services.sessions) as session:
        repository.add_source(
            session=session,
            name="feed",
            kind="fake",
            options=validate_options("fake", {"posts": posts}),
            every_seconds=None,
            now=services.clock(),
        )


def post(number: int, url: str, author: str) -> dict[str, object]:
    return {
        "external_id": str(number),
        "platform": "fake",
        "url": f"https://example.social/p/{number}",
        "author_handle": author,
        "author_followers": 1000 * number,
        "text": "weekend",
        "created_at": f"2026-11-{10 + number % 5:02d}T10:00:00Z",
        "image_urls": [url],
    }


def celery_queue(services: Services) -> CeleryWorkQueue:
    assert services.settings.broker_url
    return CeleryWorkQueue(
        broker_url=services.settings.broker_url,
        fetch_batch_size=4,
        classify_batch_size=4,
        visibility_timeout=4,
    )


def image_states(services: Services) -> dict[str, int]:
    with session_scope(services.sessions) as session:
        return repository.image_state_counts(session=session)


def test_a_batch_goes_through_real_workers_into_the_report(
    pg_services: Services, file_server: ServedFiles, start_worker
) -> None:
    urls = [
        file_server.add(f"/{n}.jpg", jpeg_bytes((20 * n, 100, 40), (80 + n, 60))) for n in range(10)
    ]
    broken = file_server.add("/broken.jpg", b"<html>not an image</html>", "text/html")
    add_source(pg_services, [post(n, url, f"user{n % 3}") for n, url in enumerate([*urls, broken])])
    worker = start_worker()

    celery_queue(pg_services).collect("feed", scheduled=False)
    wait_for(
        lambda: (
            image_states(pg_services)[ImageState.CLASSIFIED] == 10
            and image_states(pg_services)[ImageState.FAILED] == 1
        ),
        timeout=180,
        what="10 images classified and 1 failed by the worker",
        on_timeout=worker.log,
    )

    with session_scope(pg_services.sessions) as session:
        detections = session.scalars(select(DetectionRow)).all()
        assert len(detections) == 10  # the tiny model's threshold 0 names a brand everywhere
        assert {d.model_version for d in detections} == {
            session.scalar(select(Classification.model_version).limit(1))
        }
        brand = detections[0].brand
        report = build_report(session=session, brand=brand)
        failed = session.scalars(select(Image).where(Image.state == ImageState.FAILED)).one()
    assert report.detections == sum(1 for d in detections if d.brand == brand)
    assert report.posts == report.detections
    assert sum(row["posts"] for row in report.by_day) == report.posts
    assert "text/html" in (failed.error or "")


def test_a_worker_killed_mid_batch_loses_nothing_and_classifies_each_image_once(
    pg_services: Services, file_server: ServedFiles, start_worker
) -> None:
    urls = [file_server.add(f"/{n}.jpg", jpeg_bytes((200, 10 * n, 40))) for n in range(11)]
    gated_url, reached, opened = file_server.add_gated("/gate.jpg", jpeg_bytes((10, 200, 40)))
    # The gate is the second image of the third fetch batch: two batches are done by then, and
    # the third is half fetched when the worker dies.
    urls.insert(9, gated_url)
    add_source(pg_services, [post(n, url, "ana") for n, url in enumerate(urls)])
    first = start_worker()

    celery_queue(pg_services).collect("feed", scheduled=False)
    assert reached.wait(timeout=180), first.log()
    first.kill()
    opened.set()
    before_restart = image_states(pg_services)
    assert before_restart[ImageState.QUEUED] > 0  # work was in flight when the worker died

    second = start_worker()
    wait_for(
        lambda: image_states(pg_services)[ImageState.CLASSIFIED] == len(urls),
        timeout=180,
        what="every image classified after the restart",
        on_timeout=second.log,
    )
    with session_scope(pg_services.sessions) as session:
        per_image = session.execute(
            select(Classification.image_id, func.count()).group_by(Classification.image_id)
        ).all()
        assert len(per_image) == len(urls)
        assert all(count == 1 for _, count in per_image)
        assert session.scalar(select(func.count()).select_from(DetectionRow)) == len(urls)


def test_a_model_without_a_no_logo_answer_stores_a_detection_for_every_image(
    pg_services: Services,
    file_server: ServedFiles,
    start_worker,
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """A folder-per-class model (no logo-free pictures) names a class for every photo it is given.

    Its threshold of 1.0 would store nothing for a model that knows "no logo": the worker must go
    by the model's own kind of answer, as ``monitor classify`` does.
    """
    from monitor.inference.tiny import write_tiny_model

    closed = write_tiny_model(
        tmp_path / "closed", labels=["old", "new"], no_logo_threshold=1.0, knows_no_logo=False
    )
    worker_env["MONITOR_MODEL_DIR"] = str(closed)
    urls = [file_server.add(f"/{n}.jpg", jpeg_bytes((30 * n, 90, 200))) for n in range(6)]
    add_source(pg_services, [post(n, url, f"user{n % 2}") for n, url in enumerate(urls)])
    worker = start_worker()

    celery_queue(pg_services).collect("feed", scheduled=False)
    wait_for(
        lambda: image_states(pg_services)[ImageState.CLASSIFIED] == 6,
        timeout=180,
        what="6 images classified by the worker",
        on_timeout=worker.log,
    )
    with session_scope(pg_services.sessions) as session:
        per_image = session.execute(
            select(DetectionRow.image_id, func.count()).group_by(DetectionRow.image_id)
        ).all()
        assert len(per_image) == 6 and all(count == 1 for _, count in per_image)
        brands = session.scalars(select(DetectionRow.brand)).all()
        report = build_report(session=session, brand=brands[0])
    assert set(brands) <= {"old", "new"}
    assert report.detections == brands.count(brands[0])


def test_the_worker_stores_the_detectors_boxes(
    pg_services: Services,
    file_server: ServedFiles,
    start_worker,
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """A one-pass detector model (what ``monitor train`` makes from boxed data) runs in the worker.

    Its threshold of 0 stores every candidate, each with a box inside its photo and the model's
    version, exactly once per image however the task is delivered.
    """
    from monitor.inference.tiny import write_tiny_detector

    detector = write_tiny_detector(tmp_path / "detector", labels=["acme", "globex"], threshold=0.0)
    worker_env["MONITOR_MODEL_DIR"] = str(detector)
    urls = [file_server.add(f"/{n}.jpg", jpeg_bytes((40 * n, 90, 200))) for n in range(4)]
    add_source(pg_services, [post(n, url, f"user{n % 2}") for n, url in enumerate(urls)])
    worker = start_worker()

    celery_queue(pg_services).collect("feed", scheduled=False)
    wait_for(
        lambda: image_states(pg_services)[ImageState.CLASSIFIED] == 4,
        timeout=180,
        what="4 images classified by the detector worker",
        on_timeout=worker.log,
    )
    with session_scope(pg_services.sessions) as session:
        rows = session.scalars(select(DetectionRow)).all()
        images = {image.id: image for image in session.scalars(select(Image)).all()}
        assert rows and {row.image_id for row in rows} == set(images)
        for row in rows:
            assert row.brand in {"acme", "globex"}
            assert row.x1 is not None and row.y1 is not None
            assert row.x2 is not None and row.y2 is not None
            assert row.x2 > row.x1 >= 0 and row.y2 > row.y1 >= 0
        versions = session.scalars(select(Classification.model_version)).all()
    assert len(versions) == 4
    assert set(versions) == {read_metadata(detector).version}
