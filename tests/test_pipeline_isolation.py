"""One bad image never takes others with it; work per task stays bounded.

On SQLite and PostgreSQL: a corrupted AVIF, an image whose fetch raises what no one expected, a
batch that stops its worker, and a huge JPEG, each among innocent neighbours.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence

import pytest
from PIL import Image as PILImageModule
from PIL.Image import Image as PILImage
from sqlalchemy import select

from monitor.domain import Detection
from monitor.images import FetchedImage, ImageFetcher
from monitor.pipeline import Services, classify_images, collect_source, fetch_images
from monitor.storage import repository
from monitor.storage.db import session_scope
from monitor.storage.tables import DetectionRow, Image, ImageState
from tests.conftest import ServedFiles, jpeg_bytes
from tests.test_pipeline import ColourClassifier, add_fake_source, fake_post, in_process


def corrupted_avif() -> bytes:
    """An AVIF whose flipped bits make Pillow's AVIF plugin raise RuntimeError."""
    buffer = io.BytesIO()
    PILImageModule.effect_noise((64, 48), 50).convert("RGB").save(buffer, "AVIF")
    original = buffer.getvalue()
    rng = random.Random(0)
    for _ in range(500):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(data))
            data[position] ^= 1 << rng.randrange(8)
        try:
            PILImageModule.open(io.BytesIO(bytes(data))).load()
        except RuntimeError:
            return bytes(data)
        except Exception:  # other refusals are not the case under test
            continue
    raise AssertionError("no mutation made the AVIF plugin raise RuntimeError")


def states(services: Services) -> dict[str, tuple[str, str | None]]:
    with session_scope(services.sessions) as session:
        return {image.url: (image.state, image.error) for image in session.scalars(select(Image))}


def test_a_corrupted_avif_fails_alone_and_its_neighbours_are_classified(
    services: Services, file_server: ServedFiles
) -> None:
    avif = file_server.add("/broken.avif", corrupted_avif(), "image/avif")
    good = [file_server.add(f"/{n}.jpg", jpeg_bytes((200, 10 * n, 20))) for n in range(5)]
    add_fake_source(
        services, "feed", [fake_post(str(n), url) for n, url in enumerate([avif, *good])]
    )

    collect_source(
        services=services, source_name="feed", queue=in_process(services, ColourClassifier())
    )

    found = states(services)
    assert found[avif][0] == ImageState.FAILED
    assert "RuntimeError" in (found[avif][1] or "")
    assert all(found[url][0] == ImageState.CLASSIFIED for url in good)


class SurprisingFetcher:
    """A fetcher (as a flaky plugin or library might behave) that raises for one URL."""

    def __init__(self, inner: ImageFetcher, bad_url: str, error: BaseException) -> None:
        self.inner, self.bad_url, self.error = inner, bad_url, error

    def fetch(self, url: str) -> FetchedImage:
        if url == self.bad_url:
            raise self.error
        return self.inner.fetch(url)


def test_an_unexpected_exception_fails_that_image_only(
    services: Services, file_server: ServedFiles
) -> None:
    from monitor.pipeline import build_fetcher

    urls = [file_server.add(f"/{n}.jpg", jpeg_bytes((200, 10 * n, 20))) for n in range(4)]
    add_fake_source(services, "feed", [fake_post(str(n), url) for n, url in enumerate(urls)])
    fetcher = SurprisingFetcher(build_fetcher(services), urls[1], KeyError("width"))
    queue = in_process(services, ColourClassifier())
    queue._fetcher = fetcher  # type: ignore[assignment]

    collect_source(services=services, source_name="feed", queue=queue)

    found = states(services)
    assert found[urls[1]] == (ImageState.FAILED, "fetching failed unexpectedly (KeyError: 'width')")
    assert [found[url][0] for url in (urls[0], urls[2], urls[3])] == [ImageState.CLASSIFIED] * 3


class WorkerDied(BaseException):
    """What a decoder that segfaults or is killed for memory looks like to the flow: it never ends."""


class RedeliveringBroker:
    """Batches as a broker holds them: a batch whose worker died is delivered again (acks_late)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.deliveries = 0

    def collect(self, source_name: str, *, scheduled: bool) -> None:
        raise AssertionError("not used")

    def fetch(self, image_ids: Sequence[int]) -> None:
        if image_ids:
            self.batches.append(list(image_ids))

    def classify(self, image_ids: Sequence[int]) -> None:
        """Classification is not under test here."""

    def run(self, services: Services, fetcher: SurprisingFetcher) -> None:
        while self.batches:
            batch = self.batches.pop(0)
            self.deliveries += 1
            assert self.deliveries < 100, "the poisoned batch was never isolated"
            try:
                fetch_images(services=services, image_ids=batch, fetcher=fetcher, queue=self)  # type: ignore[arg-type]
            except WorkerDied:
                self.batches.append(batch)


def test_a_batch_that_keeps_killing_its_worker_is_split_until_the_culprit_fails(
    services: Services, file_server: ServedFiles
) -> None:
    from monitor.pipeline import build_fetcher

    urls = [file_server.add(f"/{n}.jpg", jpeg_bytes((200, 10 * n, 20))) for n in range(16)]
    culprit = urls[11]
    add_fake_source(services, "feed", [fake_post(str(n), url) for n, url in enumerate(urls)])
    broker = RedeliveringBroker()
    collect_source(services=services, source_name="feed", queue=broker)
    assert len(broker.batches) == 1 and len(broker.batches[0]) == 16

    broker.run(services, SurprisingFetcher(build_fetcher(services), culprit, WorkerDied()))

    found = states(services)
    assert found[culprit][0] == ImageState.FAILED
    assert "ended without an outcome" in (found[culprit][1] or "")
    assert [url for url in urls if found[url][0] != ImageState.FETCHED] == [culprit]


def big_jpeg(side: int) -> bytes:
    """A JPEG declaring ``side`` x ``side`` pixels, a few tens of kilobytes on disk."""
    buffer = io.BytesIO()
    PILImageModule.new("RGB", (side, side), (210, 20, 20)).save(buffer, "JPEG", quality=30)
    return buffer.getvalue()


class RecordingClassifier(ColourClassifier):
    """Records the picture sizes of each call and whether a database connection was held."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.pool = services.sessions.kw["bind"].pool
        self.calls_sizes: list[list[tuple[int, int]]] = []
        self.connections_held: list[int] = []

    def classify(self, images: Sequence[PILImage]) -> list[list[Detection]]:
        self.calls_sizes.append([image.size for image in images])
        self.connections_held.append(self.pool.checkedout())
        return super().classify(images)


def test_a_huge_jpeg_is_decoded_at_the_models_size_and_boxes_are_in_full_pixels(
    services: Services, file_server: ServedFiles
) -> None:
    url = file_server.add("/huge.jpg", big_jpeg(7000))
    add_fake_source(services, "feed", [fake_post("1", url)])
    classifier = RecordingClassifier(services)

    collect_source(services=services, source_name="feed", queue=in_process(services, classifier))

    assert classifier.calls_sizes == [[(1024, 1024)]]  # decoded at 1/4 scale, then fitted
    with session_scope(services.sessions) as session:
        image = session.scalars(select(Image)).one()
        detection = session.scalars(select(DetectionRow)).one()
    assert (image.state, image.width, image.height) == (ImageState.CLASSIFIED, 7000, 7000)
    assert (detection.x1, detection.y1, detection.x2, detection.y2) == (0, 0, 7000, 7000)


def test_classification_holds_no_connection_and_keeps_to_the_pixel_budget(
    services: Services, file_server: ServedFiles
) -> None:
    urls = [file_server.add(f"/{n}.jpg", jpeg_bytes((220, 20, 20), (400, 300))) for n in range(6)]
    add_fake_source(services, "feed", [fake_post(str(n), url) for n, url in enumerate(urls)])
    budgeted = Services(
        # bytes kept after classification, so that a second model version classifies them too
        settings=services.settings.model_copy(
            update={"classify_pixel_budget": 250_000, "image_bytes_retention_seconds": 86_400}
        ),
        sessions=services.sessions,
        clock=services.clock,
    )
    collect_source(
        services=budgeted, source_name="feed", queue=in_process(budgeted, ColourClassifier())
    )
    with session_scope(services.sessions) as session:
        ids = list(session.scalars(select(Image.id)))
        session.execute(
            Image.__table__.update().values(state=ImageState.FETCHED)  # type: ignore[attr-defined]
        )
    classifier = RecordingClassifier(budgeted)
    classifier.version = "colour-2"

    report = classify_images(services=budgeted, image_ids=ids, classifier=classifier)

    assert report.classified == 6
    assert classifier.calls_sizes == [[(400, 300), (400, 300)]] * 3  # 240,000 pixels a call
    assert classifier.connections_held == [0, 0, 0]


@pytest.mark.parametrize("side", [7000])
def test_fetch_validates_a_huge_jpeg_without_decoding_it_whole(
    services: Services, file_server: ServedFiles, side: int
) -> None:
    """The fetch step checks that the image decodes, at the model's size, and stores its size."""
    from monitor.pipeline import build_fetcher

    url = file_server.add("/huge.jpg", big_jpeg(side))
    add_fake_source(services, "feed", [fake_post("1", url)])
    broker = RedeliveringBroker()
    collect_source(services=services, source_name="feed", queue=broker)
    report = fetch_images(
        services=services,
        image_ids=broker.batches[0],
        fetcher=build_fetcher(services),
        queue=broker,
    )
    assert len(report.fetched) == 1
    with session_scope(services.sessions) as session:
        image = repository.images_by_id(session=session, image_ids=report.fetched)[
            report.fetched[0]
        ]
        assert (image.width, image.height) == (side, side)


class ChokingClassifier(ColourClassifier):
    """A model that fails on any batch holding one particular picture size."""

    version = "choking-1"

    def __init__(self, poison_size: tuple[int, int]) -> None:
        super().__init__()
        self.poison_size = poison_size

    def classify(self, images: Sequence[PILImage]) -> list[list[Detection]]:
        if any(image.size == self.poison_size for image in images):
            raise ValueError("Input contains an unexpected shape")
        return super().classify(images)


def test_a_batch_the_model_fails_on_is_halved_until_the_image_is_found(
    services: Services, file_server: ServedFiles
) -> None:
    urls = [file_server.add(f"/{n}.jpg", jpeg_bytes((220, 20, 20), (60 + n, 40))) for n in range(8)]
    add_fake_source(services, "feed", [fake_post(str(n), url) for n, url in enumerate(urls)])
    collect_source(services=services, source_name="feed", queue=RedeliveringBroker())
    from monitor.pipeline import build_fetcher

    with session_scope(services.sessions) as session:
        ids = list(session.scalars(select(Image.id).order_by(Image.id)))
    fetch_images(
        services=services,
        image_ids=ids,
        fetcher=build_fetcher(services),
        queue=RedeliveringBroker(),
    )

    report = classify_images(
        services=services, image_ids=ids, classifier=ChokingClassifier((65, 40))
    )

    assert report.classified == 7
    found = states(services)
    assert found[urls[5]] == (
        ImageState.FAILED,
        "the model failed on this image (ValueError: Input contains an unexpected shape)",
    )


def test_a_fetch_task_delivered_again_hands_its_fetched_images_to_classification(
    services: Services, file_server: ServedFiles
) -> None:
    """The broker was away when the first delivery queued the classification: nothing is lost."""
    from monitor.pipeline import build_fetcher

    urls = [file_server.add(f"/{n}.jpg", jpeg_bytes((200, 10 * n, 20))) for n in range(3)]
    add_fake_source(services, "feed", [fake_post(str(n), url) for n, url in enumerate(urls)])
    broker = RedeliveringBroker()
    collect_source(services=services, source_name="feed", queue=broker)
    batch = broker.batches.pop()
    fetcher = build_fetcher(services)
    fetch_images(services=services, image_ids=batch, fetcher=fetcher, queue=RedeliveringBroker())

    class RecordingQueue(RedeliveringBroker):
        classified: list[int]

        def classify(self, image_ids: Sequence[int]) -> None:
            self.classified = list(image_ids)

    again = RecordingQueue()
    report = fetch_images(services=services, image_ids=batch, fetcher=fetcher, queue=again)
    assert report.fetched == [] and again.classified == sorted(batch)
