"""The flows that tie the rooms together: collect -> store -> fetch -> classify -> store.

Each flow opens its own unit of work, commits, and only then hands ids onward to a ``WorkQueue``, so a
task never sees uncommitted rows and a crash between steps loses nothing (images left ``queued`` or
``fetched`` are picked up again by ``requeue_stale``). Network I/O happens outside transactions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from monitor.collectors.base import CollectorContext, build_collector
from monitor.collectors.junk import drop_non_content
from monitor.config import Settings
from monitor.domain import CollectionBatch, Detection
from monitor.exceptions import (
    ImageError,
    MonitorError,
    SourceError,
    TransientImageFetchError,
)
from monitor.queue import CeleryWorkQueue, WorkQueue, chunks
from monitor.storage import repository
from monitor.storage.db import session_factory, session_scope
from monitor.storage.tables import ImageState

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from monitor.images import DecodedImage, ImageFetcher

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


class Classifier(Protocol):
    """What the classify flow needs from a model (``monitor.inference.classifier.LogoClassifier``)."""

    @property
    def version(self) -> str:
        """The model version written on every classification."""
        ...

    def classify(self, images: Sequence[PILImage]) -> list[list[Detection]]:
        """One list of detections per image; empty means no logo."""
        ...


@dataclass
class Services:
    """The I/O a flow runs against, built once per process and injected (tests pass fakes)."""

    settings: Settings
    sessions: sessionmaker[Session]
    clock: Clock = utc_now
    http_session: Any = None  # a requests.Session shared by collectors and the image fetcher

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = utc_now) -> Services:
        """Services for the configured database."""
        return cls(settings=settings, sessions=session_factory(settings.database), clock=clock)

    def requests_session(self) -> Any:
        """The shared HTTP session (created on first use)."""
        if self.http_session is None:
            from monitor.transport import guarded_session

            self.http_session = guarded_session(self.settings.http_user_agent)
        return self.http_session


# --- collect -----------------------------------------------------------------------------------


@dataclass
class CollectReport:
    """The outcome of collecting one source."""

    source: str
    posts_seen: int = 0
    new_posts: int = 0
    new_images: int = 0
    skipped_images: int = 0
    """Images dropped as non-content (tracking pixels, ads, avatars) before they were stored."""
    skipped: str | None = None
    error: str | None = None


def collect_source(
    *, services: Services, source_name: str, queue: WorkQueue, scheduled: bool = False
) -> CollectReport:
    """Collect one source now; a broken source is recorded as failed and reported, never raised.

    ``scheduled`` runs (from beat) re-check that the source is still due after taking its lock, so two
    beats, or a beat and a slow run, never collect the same source twice.
    """
    settings = services.settings
    started = services.clock()
    with session_scope(services.sessions) as session:
        source = repository.get_source(session=session, name=source_name)
        if not repository.claim_source(
            session=session,
            source_id=source.id,
            now=started,
            lock_seconds=settings.collect_lock_seconds,
        ):
            return CollectReport(source=source_name, skipped="another collection is running")
        session.refresh(source)  # another run may have finished between our read and our claim
        if scheduled and source not in repository.due_sources(session=session, now=started):
            repository.release_source(session=session, source_id=source.id)
            return CollectReport(source=source_name, skipped="not due")
        source_id, kind, options, cursor = source.id, source.kind, source.options, source.cursor
    batch, error = _run_collector(
        services=services, name=source_name, kind=kind, options=options, cursor=cursor
    )
    posts, skipped = drop_non_content(batch.posts)
    if skipped.total:
        log.info(
            "%s: skipped %d non-content images %s", source_name, skipped.total, skipped.by_reason
        )
    with session_scope(services.sessions) as session:
        source = repository.get_source(session=session, name=source_name)
        stored = repository.store_posts(
            session=session, source=source, posts=posts, now=services.clock()
        )
        repository.record_run(
            session=session,
            source=source,
            started_at=started,
            finished_at=services.clock(),
            posts_seen=len(batch.posts),
            stored=stored,
            error=error,
            cursor=batch.cursor,
        )
        repository.release_source(session=session, source_id=source_id)
    queue.fetch(stored.new_image_ids)
    return CollectReport(
        source=source_name,
        posts_seen=len(batch.posts),
        new_posts=len(stored.new_post_ids),
        new_images=len(stored.new_image_ids),
        skipped_images=skipped.total,
        error=error,
    )


def _run_collector(
    *, services: Services, name: str, kind: str, options: dict[str, Any], cursor: Any
) -> tuple[CollectionBatch, str | None]:
    """Run the collector outside any transaction; a source failure becomes a recorded reason."""
    from monitor.http import HttpClient

    settings = services.settings
    http = HttpClient.from_settings(settings, session=services.requests_session())
    context = CollectorContext(
        source_name=name, http=http, allow_private_hosts=settings.allow_private_image_hosts
    )
    try:
        collector = build_collector(kind, options, context)
        return collector.collect(cursor=cursor, limit=settings.max_posts_per_run), None
    except SourceError as exc:
        log.warning("collecting %s failed: %s", name, exc)
        return CollectionBatch(), str(exc) or type(exc).__name__


def collect_all(
    *,
    services: Services,
    queue: WorkQueue,
    source_names: Sequence[str] | None = None,
    on_start: Callable[[str, int, int], None] | None = None,
) -> list[CollectReport]:
    """Collect several sources (all when ``source_names`` is None); each failure stays its own.

    ``on_start(name, number, count)`` is told before each source, for progress displays.
    """
    if source_names is None:
        with session_scope(services.sessions) as session:
            source_names = [s.name for s in repository.list_sources(session=session)]
    reports = []
    for number, name in enumerate(source_names):
        if on_start is not None:
            on_start(name, number, len(source_names))
        reports.append(collect_source(services=services, source_name=name, queue=queue))
    return reports


def run_due_collections(*, services: Services, queue: WorkQueue) -> list[str]:
    """Queue a collection of every scheduled source that is due (what celery beat triggers)."""
    with session_scope(services.sessions) as session:
        due = [s.name for s in repository.due_sources(session=session, now=services.clock())]
    for name in due:
        queue.collect(name, scheduled=True)
    return due


# --- fetch -------------------------------------------------------------------------------------


@dataclass
class FetchReport:
    """The outcome of fetching a batch of images.

    ``split`` lists the halves a batch was cut into instead of being fetched: it had been tried
    before without an outcome (its worker crashed, or it failed as a whole), so the halves are
    queued apart until the image that sinks it is alone, and is then failed.
    """

    fetched: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    retry: list[int] = field(default_factory=list)
    retry_after_seconds: int = 0
    """How long the images in ``retry`` should wait (``retry_delay_seconds`` of their attempts)."""
    split: list[list[int]] = field(default_factory=list)
    already_fetched: list[int] = field(default_factory=list)
    """Images of the batch fetched before: a task delivered again (its classification may never
    have been queued, if the broker was away), so they are handed to classification again."""


RETRY_DELAY_CAP_SECONDS = 120
"""The longest wait before another try: under the broker's visibility timeout, or a waiting
retry would be delivered twice."""


def retry_delay_seconds(attempts: int) -> int:
    """How long an image waits after its ``attempts``-th transient failure: doubling, capped."""
    return int(min(RETRY_DELAY_CAP_SECONDS, 2 ** max(1, attempts)))


def fetch_images(
    *, services: Services, image_ids: Sequence[int], fetcher: ImageFetcher, queue: WorkQueue
) -> FetchReport:
    """Fetch and validate queued images; unusable ones are stored as failed with their reason.

    Transient failures (timeouts, 5xx) keep the image queued and are listed in ``retry`` until it
    has been tried ``task_max_retries`` times. Every other failure of one image, expected or not,
    is that image's alone: it is stored as failed with its reason and the batch goes on.
    """
    report = FetchReport()
    targets = _claim_fetch_batch(services=services, image_ids=image_ids, report=report)
    for half in report.split:
        queue.fetch(half)
    outcomes = {image_id: _fetch_one(services, fetcher, url) for image_id, url in targets}
    with session_scope(services.sessions) as session:
        for image in repository.images_in_state(
            session=session, image_ids=list(outcomes), state=ImageState.QUEUED
        ):
            _store_fetch_outcome(
                session=session,
                services=services,
                image=image,
                outcome=outcomes[image.id],
                report=report,
            )
    queue.classify(report.fetched + report.already_fetched)
    return report


def _claim_fetch_batch(
    *, services: Services, image_ids: Sequence[int], report: FetchReport
) -> list[tuple[int, str]]:
    """The (id, url) pairs to fetch now, each with its attempt counted and committed first.

    A batch of several images of which one was tried before is split in two instead (see
    ``FetchReport.split``); a lone image out of attempts is failed with its last reason.
    """
    limit = services.settings.task_max_retries
    with session_scope(services.sessions) as session:
        report.already_fetched = [
            image.id
            for image in repository.images_in_state(
                session=session, image_ids=image_ids, state=ImageState.FETCHED
            )
        ]
        images = repository.images_in_state(
            session=session, image_ids=image_ids, state=ImageState.QUEUED
        )
        if len(images) > 1 and any(image.attempts > 0 for image in images):
            ids = [image.id for image in images]
            middle = len(ids) // 2
            report.split = [ids[:middle], ids[middle:]]
            return []
        usable = []
        for image in images:
            if image.attempts >= max(1, limit):
                reason = _gave_up_reason(image.attempts, image.error)
                repository.mark_image_failed(session=session, image=image, reason=reason)
                report.failed[image.id] = reason
            else:
                usable.append(image)
        repository.claim_images_for_fetch(session=session, images=usable, now=services.clock())
        return [(image.id, image.url) for image in usable]


def _gave_up_reason(attempts: int, last_error: str | None) -> str:
    if last_error:
        return f"gave up after {attempts} attempts; the last one: {last_error}"
    return (
        f"gave up after {attempts} attempts that ended without an outcome "
        "(fetching or decoding this image stopped its worker)"
    )


def _fetch_one(services: Services, fetcher: ImageFetcher, url: str) -> Any:
    """One image's outcome: (fetched, (width, height)) or the error that stopped it.

    The fetch only checks that the image decodes, so it decodes at the model's size (JPEG draft
    mode): a small file declaring a huge canvas costs little here.
    """
    from monitor.images import decode_scaled

    settings = services.settings
    try:
        fetched = fetcher.fetch(url)
        decoded = decode_scaled(
            fetched.data, max_pixels=settings.max_image_pixels, max_side=settings.decode_max_side
        )
    except ImageError as exc:
        return exc
    except Exception as exc:  # one image's unexpected failure must not sink its batch
        log.exception("fetching %s failed unexpectedly", url)
        return ImageError(f"fetching failed unexpectedly ({type(exc).__name__}: {exc})")
    return fetched, (decoded.width, decoded.height)


def _store_fetch_outcome(
    *, session: Session, services: Services, image: Any, outcome: Any, report: FetchReport
) -> None:
    if isinstance(outcome, TransientImageFetchError):
        attempts = repository.note_image_attempt(session=session, image=image, reason=str(outcome))
        if attempts < services.settings.task_max_retries:
            report.retry.append(image.id)
            report.retry_after_seconds = max(
                report.retry_after_seconds, retry_delay_seconds(attempts)
            )
            return
    if isinstance(outcome, ImageError):
        repository.mark_image_failed(session=session, image=image, reason=str(outcome))
        report.failed[image.id] = str(outcome)
        return
    fetched, (width, height) = outcome
    repository.save_fetched_image(
        session=session,
        image=image,
        data=fetched.data,
        content_type=fetched.content_type,
        width=width,
        height=height,
        now=services.clock(),
    )
    report.fetched.append(image.id)


# --- classify ----------------------------------------------------------------------------------


@dataclass
class ClassifyReport:
    """The outcome of classifying a batch of images."""

    classified: int = 0
    detections: int = 0
    already_done: int = 0
    failed: dict[int, str] = field(default_factory=dict)


def classify_images(
    *, services: Services, image_ids: Sequence[int], classifier: Classifier
) -> ClassifyReport:
    """Classify fetched images and store every detection once per model version.

    Three steps, so no database transaction stays open while the model runs: read the pending
    images' bytes, decode and classify them outside any transaction (at most
    ``classify_pixel_budget`` decoded pixels held at once), then store the verdicts in one unit of
    work (a verdict another worker stored meanwhile is simply found there).
    """
    report = ClassifyReport()
    with session_scope(services.sessions) as session:
        pending = [
            (image.id, data)
            for image, data in repository.fetched_images_to_classify(
                session=session, image_ids=image_ids, model_version=classifier.version
            )
        ]
    report.already_done = len(set(image_ids)) - len(pending)
    verdicts, failures, thumbnails = _classify_within_budget(services, classifier, pending)
    with session_scope(services.sessions) as session:
        images = repository.images_by_id(session=session, image_ids=[i for i, _ in pending])
        for image_id, reason in failures.items():
            repository.mark_image_failed(session=session, image=images[image_id], reason=reason)
            report.failed[image_id] = reason
        # One write for the whole task, after the model has run: the rows it locks (images, the
        # brand's daily totals) are held only for the write itself.
        ordered = [(images[image_id], detections) for image_id, detections in verdicts.items()]
        written = repository.save_classifications(
            session=session,
            verdicts=ordered,
            model_version=classifier.version,
            now=services.clock(),
        )
        for (_, detections), stored in zip(ordered, written, strict=True):
            report.classified += int(stored)
            report.detections += len(detections) if stored else 0
        repository.keep_evidence(
            session=session,
            thumbnails={image_id: thumbnails.get(image_id) for image_id in verdicts},
            drop_full_bytes=services.settings.image_bytes_retention_seconds == 0,
        )
    return report


def _classify_within_budget(
    services: Services, classifier: Classifier, pending: Sequence[tuple[int, bytes]]
) -> tuple[dict[int, list[Detection]], dict[int, str], dict[int, bytes | None]]:
    """Decode one image at a time and run the model whenever the batch or pixel budget is full.

    Each image's thumbnail (the evidence kept once its full bytes go) is made as it is decoded,
    so no picture is held longer than its batch.
    """
    settings = services.settings
    verdicts: dict[int, list[Detection]] = {}
    failures: dict[int, str] = {}
    thumbnails: dict[int, bytes | None] = {}
    batch: list[tuple[int, DecodedImage]] = []
    held_pixels = 0
    for image_id, data in pending:
        decoded = _decode_for_model(settings, data)
        if isinstance(decoded, str):
            failures[image_id] = decoded
            continue
        thumbnails[image_id] = _thumbnail(settings, decoded.picture)
        pixels = decoded.picture.width * decoded.picture.height
        if batch and (
            len(batch) >= settings.classify_batch_size
            or held_pixels + pixels > settings.classify_pixel_budget
        ):
            _run_model_isolating(classifier, batch, verdicts, failures)
            batch, held_pixels = [], 0
        batch.append((image_id, decoded))
        held_pixels += pixels
    if batch:
        _run_model_isolating(classifier, batch, verdicts, failures)
    return verdicts, failures, thumbnails


def _thumbnail(settings: Settings, picture: PILImage) -> bytes | None:
    """The evidence kept of a classified image (None when thumbnails are off)."""
    if settings.thumbnail_pixels == 0:
        return None
    from monitor.images.thumbnail import make_thumbnail

    return make_thumbnail(picture, side=settings.thumbnail_pixels)


def _run_model_isolating(
    classifier: Classifier,
    batch: Sequence[tuple[int, DecodedImage]],
    verdicts: dict[int, list[Detection]],
    failures: dict[int, str],
) -> None:
    """Run the model; if a batch fails, run its halves, until the image that fails is alone.

    The model failing on a batch says nothing about which image it choked on; halving finds it
    in a few more calls, and the other images still get their verdicts.
    """
    try:
        verdicts.update(_run_model(classifier, batch))
        return
    except Exception as exc:  # the model's failure on these pictures, isolated below
        if len(batch) == 1:
            log.exception("the model failed on image %s", batch[0][0])
            failures[batch[0][0]] = (
                f"the model failed on this image ({type(exc).__name__}: {str(exc)[:200]})"
            )
            return
    middle = len(batch) // 2
    _run_model_isolating(classifier, batch[:middle], verdicts, failures)
    _run_model_isolating(classifier, batch[middle:], verdicts, failures)


def _decode_for_model(settings: Settings, data: bytes) -> DecodedImage | str:
    """The image at the model's size, or the reason it cannot be used."""
    from monitor.images import decode_scaled

    try:
        return decode_scaled(
            data, max_pixels=settings.max_image_pixels, max_side=settings.decode_max_side
        )
    except ImageError as exc:
        return str(exc)


def _run_model(
    classifier: Classifier, batch: Sequence[tuple[int, DecodedImage]]
) -> dict[int, list[Detection]]:
    """The model's detections for each image, boxes in the full image's pixels."""
    results = classifier.classify([decoded.picture for _, decoded in batch])
    return {
        image_id: [_to_full_size(detection, decoded) for detection in detections]
        for (image_id, decoded), detections in zip(batch, results, strict=True)
    }


def _to_full_size(detection: Detection, decoded: DecodedImage) -> Detection:
    """A detection's box scaled from the decoded picture to the full image it stands for."""
    if detection.box is None or decoded.scale == (1.0, 1.0):
        return detection
    scale_x, scale_y = decoded.scale
    x1, y1, x2, y2 = detection.box
    box = (
        round(x1 * scale_x),
        round(y1 * scale_y),
        min(decoded.width, round(x2 * scale_x)),
        min(decoded.height, round(y2 * scale_y)),
    )
    return replace(detection, box=box)


# --- recovery ----------------------------------------------------------------------------------


IDLE_BROKER_GRACE_SECONDS = 120
"""When the broker holds no image task, images waiting longer than this have none: their task was
never sent (the broker was away) or was lost. Younger ones may be on their way into the queue."""


@dataclass
class RequeueReport:
    """How many stale images were handed to the queue again."""

    fetch: int = 0
    classify: int = 0


def requeue_stale(
    *, services: Services, queue: WorkQueue, older_than_seconds: int | None = None
) -> RequeueReport:
    """Queue again images left ``queued`` or ``fetched`` for too long (their task was lost).

    ``older_than_seconds=0`` takes every waiting image: what to do when the broker is known to have
    lost its tasks, or when a user asks (a task queued twice does its work once).
    """
    age = (
        services.settings.requeue_after_seconds
        if older_than_seconds is None
        else older_than_seconds
    )
    now = services.clock()
    cutoff = now - timedelta(seconds=age)
    with session_scope(services.sessions) as session:
        to_fetch = repository.stale_image_ids(
            session=session, state=ImageState.QUEUED, older_than=cutoff
        )
        to_classify = repository.stale_image_ids(
            session=session, state=ImageState.FETCHED, older_than=cutoff
        )
        repository.touch_images(
            session=session, image_ids=to_fetch, state=ImageState.QUEUED, now=now
        )
        repository.touch_images(
            session=session, image_ids=to_classify, state=ImageState.FETCHED, now=now
        )
        retention = services.settings.image_bytes_retention_seconds
        if retention:
            repository.drop_expired_image_bytes(
                session=session, classified_before=now - timedelta(seconds=retention)
            )
    queue.fetch(to_fetch)
    queue.classify(to_classify)
    return RequeueReport(fetch=len(to_fetch), classify=len(to_classify))


def reclassify_all(*, services: Services, queue: WorkQueue) -> RequeueReport:
    """Give every classified image to the current model again (after deploying a newer one).

    Images whose bytes are kept are classified straight away; the others are fetched again. Each
    image's current classification keeps counting until the newer one replaces it.
    """
    with session_scope(services.sessions) as session:
        to_fetch, to_classify = repository.queue_for_reclassification(
            session=session, now=services.clock()
        )
    queue.fetch(to_fetch)
    queue.classify(to_classify)
    return RequeueReport(fetch=len(to_fetch), classify=len(to_classify))


class BrokerState(Protocol):
    """What the broker can tell about lost work (``monitor.queue.CeleryWorkQueue``)."""

    def broker_was_reset(self) -> bool:
        """True when the broker lost its data since the last look."""
        ...

    def broker_is_idle(self) -> bool:
        """True when the broker holds no image task, queued or taken."""
        ...


def requeue_lost_work(
    *, services: Services, queue: WorkQueue, broker: BrokerState
) -> RequeueReport:
    """What beat runs every ``requeue_check_seconds``: queue again the work whose task is gone.

    Every waiting image when the broker lost its data; those waiting beyond a short grace when
    the broker holds no image task at all (they were stored while it was away, or their message
    was lost); otherwise only those waiting longer than ``requeue_after_seconds``, since with a
    backlog in the queue a waiting image most likely still has its task.
    """
    if broker.broker_was_reset():
        older_than: int | None = 0
    elif broker.broker_is_idle():
        older_than = IDLE_BROKER_GRACE_SECONDS
    else:
        older_than = None
    return requeue_stale(services=services, queue=queue, older_than_seconds=older_than)


# --- the embedded default ----------------------------------------------------------------------


class InProcessWorkQueue:
    """The embedded default: every step runs right away in this process, in batches.

    The classifier is loaded on first use; if there is no model yet, fetched images wait (state
    ``fetched``) and ``model_error`` says why, so `monitor requeue` can finish them after training.
    """

    def __init__(
        self,
        *,
        services: Services,
        fetcher: ImageFetcher | None = None,
        classifier_loader: Callable[[], Classifier] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.services = services
        self._progress = progress
        self._fetcher = fetcher
        self._classifier_loader = classifier_loader or _default_classifier_loader(services.settings)
        self._classifier: Classifier | None = None
        self.model_error: str | None = None
        self.fetch_reports: list[FetchReport] = []
        self.classify_reports: list[ClassifyReport] = []

    def collect(self, source_name: str, *, scheduled: bool) -> None:
        collect_source(
            services=self.services, source_name=source_name, queue=self, scheduled=scheduled
        )

    def fetch(self, image_ids: Sequence[int]) -> None:
        """Fetch (and classify) in batches; ``progress(done, total)`` is told after each one."""
        done = 0
        for batch in chunks(image_ids, self.services.settings.fetch_batch_size):
            self.fetch_reports.append(
                fetch_images(
                    services=self.services, image_ids=batch, fetcher=self.fetcher(), queue=self
                )
            )
            done += len(batch)
            if self._progress is not None:
                self._progress(done, len(image_ids))

    def classify(self, image_ids: Sequence[int]) -> None:
        if not image_ids:
            return
        classifier = self.classifier()
        if classifier is None:
            return
        self.classify_reports.append(
            classify_images(services=self.services, image_ids=image_ids, classifier=classifier)
        )

    def fetcher(self) -> ImageFetcher:
        """The image fetcher, built on first use."""
        if self._fetcher is None:
            self._fetcher = build_fetcher(self.services)
        return self._fetcher

    def classifier(self) -> Classifier | None:
        """The model, loaded once; None (with ``model_error`` set) when it cannot be loaded."""
        if self._classifier is None and self.model_error is None:
            try:
                self._classifier = self._classifier_loader()
            except MonitorError as exc:
                self.model_error = str(exc)
        return self._classifier


def build_fetcher(services: Services) -> ImageFetcher:
    """The image fetcher with the configured limits."""
    from monitor.images import ImageFetcher, ImageLimits

    return ImageFetcher(
        limits=ImageLimits.from_settings(services.settings), session=services.requests_session()
    )


def _default_classifier_loader(settings: Settings) -> Callable[[], Classifier]:
    def load() -> Classifier:
        from monitor.inference.classifier import load_classifier

        return load_classifier(settings.default_model_dir, runtime=settings.model_runtime)

    return load


def work_queue_for(
    services: Services, *, progress: Callable[[int, int], None] | None = None
) -> WorkQueue:
    """The queue the configuration asks for: Celery with a broker, in-process without.

    ``progress(done, total)`` hears about in-process image batches (a broker's workers report
    through ``monitor status``).
    """
    settings = services.settings
    if settings.broker_url is None:
        return InProcessWorkQueue(services=services, progress=progress)
    return CeleryWorkQueue(
        broker_url=settings.broker_url,
        fetch_batch_size=settings.fetch_batch_size,
        classify_batch_size=settings.classify_batch_size,
        visibility_timeout=settings.broker_visibility_timeout_seconds,
    )
