"""Where work goes after a commit: task and queue names, and the broker-backed work queue.

The flows in ``monitor.pipeline`` hand image ids to a ``WorkQueue`` once their transaction has
committed. With a broker configured that is ``CeleryWorkQueue``, which sends tasks by name (so this
package never imports ``workers``); on the embedded default it is the in-process queue of the pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Protocol

QUEUE_COLLECT = "collect"
QUEUE_FETCH = "fetch"
QUEUE_CLASSIFY = "classify"

TASK_COLLECT = "monitor.collect_source"
TASK_FETCH = "monitor.fetch_images"
TASK_CLASSIFY = "monitor.classify_images"
TASK_REQUEUE = "monitor.requeue_stale"
TASK_RUN_DUE = "monitor.run_due_collections"

TASK_QUEUES = {
    TASK_COLLECT: QUEUE_COLLECT,
    TASK_RUN_DUE: QUEUE_COLLECT,
    TASK_REQUEUE: QUEUE_COLLECT,
    TASK_FETCH: QUEUE_FETCH,
    TASK_CLASSIFY: QUEUE_CLASSIFY,
}


class WorkQueue(Protocol):
    """Accepts ids of committed work."""

    def collect(self, source_name: str, *, scheduled: bool) -> None:
        """Collect one source (``scheduled``: only if it is still due when the work starts)."""
        ...

    def fetch(self, image_ids: Sequence[int]) -> None:
        """Fetch and validate these queued images."""
        ...

    def classify(self, image_ids: Sequence[int]) -> None:
        """Classify these fetched images."""
        ...


def chunks(ids: Sequence[int], size: int) -> Iterator[list[int]]:
    """Split ids into batches of at most ``size``."""
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


PRIORITY_STEPS = (3, 6, 9)
"""Kombu's Redis transport keeps priority p (3, 6, 9; 0 is the plain name) of queue q in the list
``q\x06\x16p``."""
UNACKED_KEY = "unacked"
"""The hash where kombu's Redis transport keeps the tasks workers took but did not finish."""
BROKER_MARK_KEY = "monitor:broker-mark"
"""A key monitor keeps in a Redis broker; when it is gone, the broker lost everything it held."""


def _routing_key(entry: bytes) -> str | None:
    """The queue of a task kombu keeps as taken (``[message, exchange, routing key]`` in JSON)."""
    try:
        routing_key = json.loads(entry)[2]
    except (ValueError, IndexError, TypeError):
        return None
    return routing_key if isinstance(routing_key, str) else None


class CeleryWorkQueue:
    """Sends tasks to Celery workers through the broker, by task name."""

    def __init__(
        self,
        *,
        broker_url: str,
        fetch_batch_size: int,
        classify_batch_size: int,
        visibility_timeout: int,
    ) -> None:
        from celery import Celery

        self._broker_url = broker_url
        self._app = Celery("monitor-client", broker=broker_url, set_as_current=False)
        self._app.conf.broker_transport_options = {"visibility_timeout": visibility_timeout}
        self._app.conf.broker_connection_retry_on_startup = True
        self._fetch_batch_size = fetch_batch_size
        self._classify_batch_size = classify_batch_size

    def collect(self, source_name: str, *, scheduled: bool) -> None:
        self._send(TASK_COLLECT, [source_name], {"scheduled": scheduled})

    def fetch(self, image_ids: Sequence[int]) -> None:
        for batch in chunks(image_ids, self._fetch_batch_size):
            self._send(TASK_FETCH, [batch], {})

    def classify(self, image_ids: Sequence[int]) -> None:
        for batch in chunks(image_ids, self._classify_batch_size):
            self._send(TASK_CLASSIFY, [batch], {})

    def broker_was_reset(self) -> bool:
        """True when the broker lost its data since the last look (and then marks it again).

        A Redis restarted without persistence comes back empty: every queued and unacknowledged
        task is gone, and nothing in the broker says so. Monitor keeps a mark in it; a missing mark
        means every image still waiting has lost its task, so it can be queued again at once
        instead of after ``requeue_after_seconds``. The first look at a new broker says True too
        (queueing waiting work twice is harmless: tasks are idempotent). Brokers other than Redis
        are not looked at.
        """
        if not self._broker_url.startswith(("redis://", "rediss://")):
            return False
        import redis

        from monitor.exceptions import QueueError

        try:
            with redis.Redis.from_url(self._broker_url, socket_timeout=10) as client:
                return bool(client.set(BROKER_MARK_KEY, "1", nx=True))
        except redis.RedisError as exc:
            raise QueueError(f"cannot reach the broker: {exc}") from exc

    def broker_is_idle(self) -> bool:
        """True when the Redis broker holds no image task at all: none queued, none taken.

        Then an image still waiting (beyond a moment's grace) has no task anywhere: it was stored
        while the broker was away, or its message was lost. Kombu keeps each queue as Redis lists
        (one per priority step) and the tasks workers hold in the ``unacked`` hash. Brokers other
        than Redis are never called idle.
        """
        if not self._broker_url.startswith(("redis://", "rediss://")):
            return False
        import redis

        from monitor.exceptions import QueueError

        keys = [
            f"{queue}{suffix}"
            for queue in (QUEUE_FETCH, QUEUE_CLASSIFY)
            for suffix in ("", *(f"\x06\x16{step}" for step in PRIORITY_STEPS))
        ]
        try:
            with redis.Redis.from_url(self._broker_url, socket_timeout=10) as client:
                if sum(int(client.llen(key)) for key in keys):
                    return False
                taken = client.hvals(UNACKED_KEY)
        except redis.RedisError as exc:
            raise QueueError(f"cannot reach the broker: {exc}") from exc
        return not any(_routing_key(entry) in (QUEUE_FETCH, QUEUE_CLASSIFY) for entry in taken)

    def _send(self, task: str, args: list[object], kwargs: dict[str, object]) -> None:
        from kombu.exceptions import OperationalError

        from monitor.exceptions import QueueError

        try:
            self._app.send_task(task, args=args, kwargs=kwargs, queue=TASK_QUEUES[task])
        except OperationalError as exc:
            raise QueueError(
                f"cannot reach the broker: {exc}; the work is stored, and `monitor requeue` "
                "queues it again once the broker is back (beat does so by itself)"
            ) from exc
