"""Thin Celery tasks: parse ids, call a flow in ``monitor.pipeline``, decide about retries.

Per-process state (database engine, HTTP session, the model) is created lazily inside each worker
process, after the fork: TensorFlow initialised in a parent and used in forked children hangs.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery.signals import worker_process_init

from monitor import pipeline
from monitor.exceptions import QueueError, StorageError
from monitor.queue import (
    TASK_CLASSIFY,
    TASK_COLLECT,
    TASK_FETCH,
    TASK_REQUEUE,
    TASK_RUN_DUE,
    CeleryWorkQueue,
)
from monitor.storage.db import get_engine
from workers.celery_app import app, settings

TRANSIENT = (StorageError, QueueError)

_state: dict[str, Any] = {}


@worker_process_init.connect
def _forget_parent_state(**_: Any) -> None:
    """A forked child starts with no engine, session or model of its parent's."""
    _state.clear()
    get_engine.cache_clear()


def _services() -> pipeline.Services:
    if "services" not in _state:
        _state["services"] = pipeline.Services.from_settings(settings)
    return _state["services"]


def _queue() -> CeleryWorkQueue:
    if "queue" not in _state:
        assert settings.broker_url is not None, "workers need MONITOR_BROKER_URL"
        _state["queue"] = CeleryWorkQueue(
            broker_url=settings.broker_url,
            fetch_batch_size=settings.fetch_batch_size,
            classify_batch_size=settings.classify_batch_size,
            visibility_timeout=settings.broker_visibility_timeout_seconds,
        )
    return _state["queue"]


def _classifier() -> pipeline.Classifier:
    """The model, loaded once per worker process on its first classification task."""
    if "classifier" not in _state:
        from monitor.inference.classifier import load_classifier

        _state["classifier"] = load_classifier(
            settings.default_model_dir, runtime=settings.model_runtime
        )
    return _state["classifier"]


def _fetcher() -> Any:
    if "fetcher" not in _state:
        _state["fetcher"] = pipeline.build_fetcher(_services())
    return _state["fetcher"]


@app.task(
    name=TASK_COLLECT, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5, acks_late=True
)
def collect_source(source_name: str, scheduled: bool = False) -> dict[str, Any]:
    """Collect one source; its own failures are recorded on it, not raised."""
    report = pipeline.collect_source(
        services=_services(), source_name=source_name, queue=_queue(), scheduled=scheduled
    )
    return asdict(report)


@app.task(name=TASK_FETCH, bind=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def fetch_images(self: Any, image_ids: list[int]) -> dict[str, Any]:
    """Fetch a batch of images; retry only the ones that failed transiently."""
    report = pipeline.fetch_images(
        services=_services(), image_ids=image_ids, fetcher=_fetcher(), queue=_queue()
    )
    if report.retry:
        raise self.retry(
            args=[report.retry],
            countdown=report.retry_after_seconds,
            max_retries=None,
        )
    return asdict(report)


@app.task(name=TASK_CLASSIFY, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def classify_images(image_ids: list[int]) -> dict[str, Any]:
    """Classify a batch of fetched images with this process's model."""
    report = pipeline.classify_images(
        services=_services(), image_ids=image_ids, classifier=_classifier()
    )
    return asdict(report)


@app.task(name=TASK_RUN_DUE, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=3)
def run_due_collections() -> list[str]:
    """Queue every scheduled source that is due (celery beat calls this)."""
    return pipeline.run_due_collections(services=_services(), queue=_queue())


@app.task(name=TASK_REQUEUE, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=3)
def requeue_stale() -> dict[str, int]:
    """Queue again images whose task was lost (see ``pipeline.requeue_lost_work``)."""
    queue = _queue()
    return asdict(pipeline.requeue_lost_work(services=_services(), queue=queue, broker=queue))
