"""The flows end to end on SQLite and PostgreSQL: collect -> fetch -> classify -> store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from PIL.Image import Image as PILImage
from sqlalchemy import func, select, update

from monitor.collectors.base import validate_options
from monitor.domain import Detection
from monitor.pipeline import (
    InProcessWorkQueue,
    Services,
    collect_all,
    collect_source,
    requeue_stale,
    run_due_collections,
)
from monitor.storage import repository
from monitor.storage.db import session_scope
from monitor.storage.tables import Classification, DetectionRow, Image, ImageState
from tests.conftest import FixedClock, ServedFiles, jpeg_bytes


class ColourClassifier:
    """A stand-in model with a known answer: reddish images show "acme", others nothing."""

    version = "colour-1"

    def __init__(self) -> None:
        self.calls = 0

    def classify(self, images: Sequence[PILImage]) -> list[list[Detection]]:
        self.calls += 1
        results = []
        for image in images:
            red, _green, blue = image.resize((1, 1)).getpixel((0, 0))  # type: ignore[misc]
            width, height = image.size
            results.append(
                [Detection("acme", 0.93, (0, 0, width, height))] if red > 150 > blue else []
            )
        return results


def fake_post(
    external_id: str, *urls: str, author: str = "ana", text: str = "hi"
) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "platform": "fake",
        "url": f"https://example.social/{external_id}",
        "author_handle": author,
        "author_followers": 10,
        "text": text,
        "created_at": "2026-11-15T12:00:00Z",
        "image_urls": list(urls),
    }


def add_fake_source(
    services: Services, name: str, posts: list[dict[str, Any]], **extra: Any
) -> None:
    with session_scope(services.sessions) as session:
        repository.add_source(
            session=session,
            name=name,
            kind="fake",
            options=validate_options("fake", {"posts": posts, **extra}),
            every_seconds=None,
            now=services.clock(),
        )


def in_process(services: Services, classifier: ColourClassifier) -> InProcessWorkQueue:
    return InProcessWorkQueue(services=services, classifier_loader=lambda: classifier)


def test_collected_images_are_fetched_classified_and_stored(
    services: Services, file_server: ServedFiles
) -> None:
    red = file_server.add("/red.jpg", jpeg_bytes((220, 20, 20)))
    blue = file_server.add("/blue.jpg", jpeg_bytes((20, 20, 220)))
    add_fake_source(services, "feed", [fake_post("1", red), fake_post("2", blue, red)])
    queue = in_process(services, ColourClassifier())

    report = collect_source(services=services, source_name="feed", queue=queue)

    assert (report.new_posts, report.new_images, report.error) == (2, 2, None)
    assert file_server.hits == {"/red.jpg": 1, "/blue.jpg": 1}
    with session_scope(services.sessions) as session:
        assert repository.image_state_counts(session=session)[ImageState.CLASSIFIED] == 2
        rows = session.scalars(select(DetectionRow)).all()
        assert [(r.brand, r.model_version, r.x2, r.y2) for r in rows] == [
            ("acme", "colour-1", 64, 48)
        ]


def test_collecting_and_classifying_again_stores_nothing_twice(
    services: Services, file_server: ServedFiles
) -> None:
    red = file_server.add("/red.jpg", jpeg_bytes((220, 20, 20)))
    add_fake_source(services, "feed", [fake_post("1", red)])
    classifier = ColourClassifier()
    queue = in_process(services, classifier)
    collect_source(services=services, source_name="feed", queue=queue)
    with session_scope(services.sessions) as session:
        session.execute(
            update(Image).values(
                state=ImageState.FETCHED, fetched_at=services.clock() - timedelta(days=1)
            )
        )

    again = collect_source(services=services, source_name="feed", queue=queue)
    requeue_stale(services=services, queue=queue, older_than_seconds=0)  # a re-delivered task

    assert (again.new_posts, again.new_images) == (0, 0)
    with session_scope(services.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Classification)) == 1
        assert session.scalar(select(func.count()).select_from(DetectionRow)) == 1


def test_unusable_images_are_stored_as_failed_and_the_batch_goes_on(
    services: Services, file_server: ServedFiles
) -> None:
    good = file_server.add("/good.jpg", jpeg_bytes((220, 20, 20)))
    html = file_server.add("/page.jpg", b"<html><body>hello</body></html>", "image/jpeg")
    empty = file_server.add("/empty.jpg", b"", "image/jpeg")
    truncated = file_server.add("/cut.jpg", jpeg_bytes((220, 20, 20), (400, 300))[:700])
    missing = file_server.base_url + "/gone.jpg"
    add_fake_source(services, "feed", [fake_post("1", html, empty, truncated, missing, good)])

    collect_source(
        services=services, source_name="feed", queue=in_process(services, ColourClassifier())
    )

    with session_scope(services.sessions) as session:
        images = {i.url: i for i in session.scalars(select(Image))}
    assert images[good].state == ImageState.CLASSIFIED
    for url in (html, empty, truncated, missing):
        assert images[url].state == ImageState.FAILED, url
        assert images[url].error
    assert "404" in (images[missing].error or "")


def test_a_broken_source_is_recorded_and_the_others_go_on(
    services: Services, file_server: ServedFiles
) -> None:
    red = file_server.add("/red.jpg", jpeg_bytes((220, 20, 20)))
    add_fake_source(services, "broken", [], fail_with="malformed")
    add_fake_source(services, "fine", [fake_post("1", red)])

    reports = collect_all(services=services, queue=in_process(services, ColourClassifier()))

    by_name = {r.source: r for r in reports}
    assert by_name["broken"].error and "garbage" in by_name["broken"].error
    assert by_name["fine"].new_posts == 1
    with session_scope(services.sessions) as session:
        broken = repository.get_source(session=session, name="broken")
        assert (broken.last_status, broken.consecutive_failures) == ("failed", 1)
        assert broken.last_error and "garbage" in broken.last_error


def test_images_waiting_for_a_model_are_finished_by_requeue(
    services: Services, file_server: ServedFiles
) -> None:
    from monitor.exceptions import ModelError

    red = file_server.add("/red.jpg", jpeg_bytes((220, 20, 20)))
    add_fake_source(services, "feed", [fake_post("1", red)])

    def no_model() -> ColourClassifier:
        raise ModelError("no model directory at /nowhere")

    waiting = InProcessWorkQueue(services=services, classifier_loader=no_model)
    collect_source(services=services, source_name="feed", queue=waiting)
    assert waiting.model_error == "no model directory at /nowhere"

    report = requeue_stale(
        services=services, queue=in_process(services, ColourClassifier()), older_than_seconds=0
    )
    assert (report.fetch, report.classify) == (0, 1)
    with session_scope(services.sessions) as session:
        assert repository.image_state_counts(session=session)[ImageState.CLASSIFIED] == 1


def test_scheduled_runs_collect_a_due_source_once(services: Services, clock: FixedClock) -> None:
    add_fake_source(services, "hourly", [fake_post("1")])
    with session_scope(services.sessions) as session:
        repository.get_source(session=session, name="hourly").every_seconds = 3600
    queue = in_process(services, ColourClassifier())

    due_twice = run_due_collections(services=services, queue=_Recorder()) + run_due_collections(
        services=services, queue=_Recorder()
    )
    first = collect_source(services=services, source_name="hourly", queue=queue, scheduled=True)
    second = collect_source(services=services, source_name="hourly", queue=queue, scheduled=True)
    clock.now += timedelta(hours=1)
    third = collect_source(services=services, source_name="hourly", queue=queue, scheduled=True)

    assert due_twice == ["hourly", "hourly"]  # two beats may both ask ...
    assert (first.skipped, first.new_posts) == (None, 1)  # ... the source is collected once
    assert second.skipped == "not due"
    assert third.skipped is None


class _Recorder:
    def __init__(self) -> None:
        self.collected: list[str] = []
        self.fetched: list[list[int]] = []

    def collect(self, source_name: str, *, scheduled: bool) -> None:
        self.collected.append(source_name)

    def fetch(self, image_ids: Sequence[int]) -> None:
        if image_ids:
            self.fetched.append(list(image_ids))

    def classify(self, image_ids: Sequence[int]) -> None:
        return None


def test_non_content_images_are_never_stored_and_are_counted(
    services: Services, file_server: ServedFiles
) -> None:
    photo = file_server.add("/photo.jpg", jpeg_bytes((220, 20, 20)))
    junk = [
        "https://pixel.wp.com/b.gif?blog=1",
        "https://secure.gravatar.com/avatar/abc?s=96",
        "https://feeds.feedburner.com/~r/Blog/~4/xyz",
    ]
    add_fake_source(services, "feed", [fake_post("1", photo, *junk)])

    report = collect_source(
        services=services, source_name="feed", queue=in_process(services, ColourClassifier())
    )

    assert (report.new_images, report.skipped_images) == (1, 3)
    with session_scope(services.sessions) as session:
        assert [image.url for image in session.scalars(select(Image))] == [photo]


class _Broker:
    def __init__(self, *, reset: bool, idle: bool) -> None:
        self.reset, self.idle = reset, idle

    def broker_was_reset(self) -> bool:
        return self.reset

    def broker_is_idle(self) -> bool:
        return self.idle


def test_lost_work_is_queued_again_as_soon_as_the_broker_shows_it_is_lost(
    services: Services, clock: FixedClock
) -> None:
    from monitor.pipeline import requeue_lost_work

    add_fake_source(
        services,
        "feed",
        [fake_post(str(n), f"https://img.example/{n}.jpg") for n in range(3)],
    )
    collect_source(services=services, source_name="feed", queue=_Recorder())
    clock.now += timedelta(minutes=5)  # older than the idle grace, younger than requeue_after

    def requeued(**state: bool) -> int:
        recorder = _Recorder()
        requeue_lost_work(services=services, queue=recorder, broker=_Broker(**state))
        return sum(len(batch) for batch in recorder.fetched)

    assert requeued(reset=False, idle=False) == 0  # a backlog: they likely still have their task
    assert requeued(reset=False, idle=True) == 3  # nothing queued anywhere: they have none
    assert requeued(reset=False, idle=True) == 0  # just queued again: within the grace
    assert requeued(reset=True, idle=False) == 3  # the broker lost everything
