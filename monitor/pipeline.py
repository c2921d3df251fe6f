"""The flows that tie the rooms together: collect -> store -> fetch -> classify -> store.

Each flow opens its own unit of work, commits, and only then hands ids onward to a ``WorkQueue``, so a
task never sees uncommitted rows and a crash between steps loses nothing (images left ``queued`` or
``fetched`` are picked up again by ``requeue_stale``). Network I/O happens outside transactions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from monitor.collectors.base import CollectorContext, build_collector
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

    from monitor.images import ImageFetcher

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
            import requests

            self.http_session = requests.Session()
            self.http_session.headers["User-Agent"] = self.settings.http_user_agent
        return self.http_session


# --- collect -----------------------------------------------------------------------------------


@dataclass
class CollectReport:
    """The outcome of collecting one source."""

    source: str
    posts_seen: int = 0
    new_posts: int = 0
    new_images: int = 0
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
    with session_scope(services.sessions) as session:
        source = repository.get_source(session=session, name=source_name)
        stored = repository.store_posts(
            session=session, source=source, posts=batch.posts, now=services.clock()
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
    *, services: Services, queue: WorkQueue, source_names: Sequence[str] | None = None
) -> list[CollectReport]:
    """Collect several sources (all when ``source_names`` is None); each failure stays its own."""
    if source_names is None:
        with session_scope(services.sessions) as session:
            source_names = [s.name for s in repository.list_sources(session=session)]
    return [
        collect_source(services=services, source_name=name, queue=queue) for name in source_names
    ]


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
    """The outcome of fetching a batch of images."""

    fetched: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    retry: list[int] = field(default_factory=list)


def fetch_images(
    *, services: Services, image_ids: Sequence[int], fetcher: ImageFetcher, queue: WorkQueue
) -> FetchReport:
    """Fetch and validate queued images; unusable ones are stored as failed with their reason.

    Transient failures (timeouts, 5xx) keep the image queued and are listed in ``retry`` until it
    has been tried ``task_max_retries`` times.
    """
    from monitor.images import decode_image

    with session_scope(services.sessions) as session:
        targets = [
            (image.id, image.url)
            for image in repository.images_in_state(
                session=session, image_ids=image_ids, state=ImageState.QUEUED
            )
        ]
    outcomes: dict[int, Any] = {}
    for image_id, url in targets:
        try:
            fetched = fetcher.fetch(url)
            decoded = decode_image(fetched.data, max_pixels=services.settings.max_image_pixels)
            outcomes[image_id] = (fetched, decoded.size)
        except ImageError as exc:
            outcomes[image_id] = exc
    report = FetchReport()
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
    queue.classify(report.fetched)
    return report


def _store_fetch_outcome(
    *, session: Session, services: Services, image: Any, outcome: Any, report: FetchReport
) -> None:
    if isinstance(outcome, TransientImageFetchError):
        attempts = repository.note_image_attempt(session=session, image=image, reason=str(outcome))
        if attempts < services.settings.task_max_retries:
            report.retry.append(image.id)
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
    """Classify fetched images in batches and store every detection once per model version."""
    from monitor.images import decode_image

    report = ClassifyReport()
    with session_scope(services.sessions) as session:
        pending = repository.fetched_images_to_classify(
            session=session, image_ids=image_ids, model_version=classifier.version
        )
        report.already_done = len(set(image_ids)) - len(pending)
        decoded: list[tuple[Any, Any]] = []
        for image, data in pending:
            try:
                decoded.append(
                    (image, decode_image(data, max_pixels=services.settings.max_image_pixels))
                )
            except ImageError as exc:
                repository.mark_image_failed(session=session, image=image, reason=str(exc))
                report.failed[image.id] = str(exc)
        batch_size = services.settings.classify_batch_size
        verdicts: list[tuple[Any, list[Detection]]] = []
        for start in range(0, len(decoded), batch_size):
            batch = decoded[start : start + batch_size]
            results = classifier.classify([picture for _, picture in batch])
            verdicts.extend(
                (image, detections) for (image, _), detections in zip(batch, results, strict=True)
            )
        # One write for the whole task, after the model has run: the rows it locks (images, the
        # brand's daily totals) are held only for the write itself.
        written = repository.save_classifications(
            session=session,
            verdicts=verdicts,
            model_version=classifier.version,
            now=services.clock(),
        )
        for (_, detections), stored in zip(verdicts, written, strict=True):
            report.classified += int(stored)
            report.detections += len(detections) if stored else 0
        repository.keep_evidence(
            session=session,
            thumbnails=_thumbnails(services.settings, decoded),
            drop_full_bytes=services.settings.image_bytes_retention_seconds == 0,
        )
    return report


def _thumbnails(settings: Settings, decoded: Sequence[tuple[Any, Any]]) -> dict[int, bytes | None]:
    """The evidence kept per classified image (None when thumbnails are off)."""
    if settings.thumbnail_pixels == 0:
        return {image.id: None for image, _ in decoded}
    from monitor.images.thumbnail import make_thumbnail

    return {
        image.id: make_thumbnail(picture, side=settings.thumbnail_pixels)
        for image, picture in decoded
    }


# --- recovery ----------------------------------------------------------------------------------


@dataclass
class RequeueReport:
    """How many stale images were handed to the queue again."""

    fetch: int = 0
    classify: int = 0


def requeue_stale(
    *, services: Services, queue: WorkQueue, older_than_seconds: int | None = None
) -> RequeueReport:
    """Queue again images left ``queued`` or ``fetched`` for too long (their task was lost)."""
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
    ) -> None:
        self.services = services
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
        for batch in chunks(image_ids, self.services.settings.fetch_batch_size):
            self.fetch_reports.append(
                fetch_images(
                    services=self.services, image_ids=batch, fetcher=self.fetcher(), queue=self
                )
            )

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

        return load_classifier(settings.default_model_dir)

    return load


def work_queue_for(services: Services) -> WorkQueue:
    """The queue the configuration asks for: Celery with a broker, in-process without."""
    settings = services.settings
    if settings.broker_url is None:
        return InProcessWorkQueue(services=services)
    return CeleryWorkQueue(
        broker_url=settings.broker_url,
        batch_size=settings.classify_batch_size,
        visibility_timeout=settings.broker_visibility_timeout_seconds,
    )
