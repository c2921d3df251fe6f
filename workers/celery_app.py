"""The Celery application: broker, routing, reliability settings and the beat schedule.

Start workers with ``monitor worker`` or ``celery -A workers.celery_app worker -Q fetch,collect``;
classification workers take ``-Q classify`` (one process per GPU, or a few on a CPU machine).
"""

from __future__ import annotations

from celery import Celery

from monitor.config import get_settings
from monitor.queue import TASK_QUEUES, TASK_REQUEUE, TASK_RUN_DUE

settings = get_settings()

app = Celery("monitor", broker=settings.broker_url or "redis://127.0.0.1:6379/0")
app.conf.update(
    include=["workers.tasks"],
    # A task is acknowledged only after it ran: a worker killed mid-batch leaves its message to be
    # delivered again. Safe because every write is idempotent (unique keys).
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_routes={name: {"queue": queue} for name, queue in TASK_QUEUES.items()},
    task_default_queue="collect",
    broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_seconds},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    beat_schedule={
        "run-due-collections": {"task": TASK_RUN_DUE, "schedule": settings.beat_interval_seconds},
        # Every minute: cheap (one Redis key, one indexed query), and it is what brings back the
        # work of a broker that restarted empty within a minute or two.
        "requeue-stale-images": {"task": TASK_REQUEUE, "schedule": settings.requeue_check_seconds},
    },
)
