"""Image bytes: kept until classified (or for the retention), a thumbnail kept as evidence, and a
newer model re-classifying old images by fetching them again."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import timedelta

from PIL import Image as PILImageModule
from PIL.Image import Image as PILImage
from sqlalchemy import select

from monitor.analytics.report import build_report
from monitor.config import Settings
from monitor.domain import Detection
from monitor.pipeline import (
    InProcessWorkQueue,
    Services,
    collect_source,
    reclassify_all,
    requeue_stale,
)
from monitor.storage.db import session_factory, session_scope
from monitor.storage.tables import ImageData
from tests.conftest import FixedClock, ServedFiles, jpeg_bytes
from tests.test_pipeline import ColourClassifier, add_fake_source, fake_post, in_process


class BlueClassifier:
    """A newer model: it sees "globex" in bluish images and nothing else."""

    version = "blue-2"

    def classify(self, images: Sequence[PILImage]) -> list[list[Detection]]:
        results = []
        for image in images:
            red, _green, blue = image.resize((1, 1)).getpixel((0, 0))  # type: ignore[misc]
            results.append([Detection("globex", 0.8, None)] if blue > 150 > red else [])
        return results


def _stored(services: Services) -> list[tuple[bytes | None, bytes | None]]:
    with session_scope(services.sessions) as session:
        return [
            (row.data, row.thumbnail)
            for row in session.scalars(select(ImageData).order_by(ImageData.image_id))
        ]


def test_full_bytes_go_once_classified_and_a_thumbnail_stays(
    services: Services, file_server: ServedFiles
) -> None:
    big = file_server.add("/big.jpg", jpeg_bytes((220, 20, 20), (800, 600)))
    add_fake_source(services, "feed", [fake_post("1", big)])
    collect_source(
        services=services, source_name="feed", queue=in_process(services, ColourClassifier())
    )

    [(data, thumbnail)] = _stored(services)
    assert data is None
    assert thumbnail is not None and len(thumbnail) < 5000
    assert PILImageModule.open(io.BytesIO(thumbnail)).size == (160, 120)


def test_bytes_kept_for_the_retention_then_let_go(
    make_settings: Callable[..., Settings],
    database_url: str,
    clock: FixedClock,
    file_server: ServedFiles,
) -> None:
    settings = make_settings(
        database_url=database_url, image_bytes_retention_seconds=3600, thumbnail_pixels=0
    )
    services = Services(settings=settings, sessions=session_factory(database_url), clock=clock)
    red = file_server.add("/red.jpg", jpeg_bytes((220, 20, 20)))
    add_fake_source(services, "feed", [fake_post("1", red)])
    queue = in_process(services, ColourClassifier())
    collect_source(services=services, source_name="feed", queue=queue)
    [(data, thumbnail)] = _stored(services)
    assert data is not None and thumbnail is None

    clock.now += timedelta(minutes=30)
    requeue_stale(services=services, queue=queue)
    assert _stored(services)[0][0] is not None
    clock.now += timedelta(minutes=31)
    requeue_stale(services=services, queue=queue)
    assert _stored(services)[0][0] is None


def test_a_newer_model_fetches_old_images_again_and_moves_the_counts(
    services: Services, file_server: ServedFiles, clock: FixedClock
) -> None:
    red = file_server.add("/red.jpg", jpeg_bytes((220, 20, 20)))
    blue = file_server.add("/blue.jpg", jpeg_bytes((20, 20, 220)))
    add_fake_source(services, "feed", [fake_post("1", red), fake_post("2", blue)])
    collect_source(
        services=services, source_name="feed", queue=in_process(services, ColourClassifier())
    )
    with session_scope(services.sessions) as session:
        assert build_report(session=session, brand="acme").posts == 1

    clock.now += timedelta(days=1)
    newer = InProcessWorkQueue(services=services, classifier_loader=BlueClassifier)
    report = reclassify_all(services=services, queue=newer)

    assert (report.fetch, report.classify) == (2, 0)
    assert file_server.hits == {"/red.jpg": 2, "/blue.jpg": 2}
    with session_scope(services.sessions) as session:
        assert build_report(session=session, brand="acme").posts == 0
        assert build_report(session=session, brand="globex").posts == 1
