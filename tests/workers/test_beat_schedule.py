"""Real ``celery beat`` and real workers: each due source is collected exactly once.

Two beat processes run at once, as happens when a deployment starts a second scheduler by mistake
(or two hosts each run ``monitor worker --beat``). They tick every second. The beats start before the
workers, so several ``run_due_collections`` tasks wait in the queue; each of them finds every
scheduled source due and queues its collection, so every source is queued several times and two
worker processes take those duplicates concurrently. The source's database lock and the due-ness
re-check after taking it must leave exactly one collection per source.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor.collectors.base import validate_options
from monitor.storage import repository
from monitor.storage.db import session_factory, session_scope
from monitor.storage.tables import CollectionRun, Source
from tests.conftest import _truncate
from tests.integration.conftest import ROOT, WorkerProcess, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SCHEDULED = ("alpha", "bravo", "charlie")
UNSCHEDULED = "delta"
EVERY_SECONDS = 3600  # due now (never collected), then not again during the test
BEAT_TICKS_BEFORE_WORKERS = 2  # run_due tasks each beat queues before any worker is up
FURTHER_TICKS = 3  # beat ticks each beat must make after every source was collected

SENT_RUN_DUE = re.compile(r"Sending due task run-due-collections \(monitor\.run_due_collections\)")
RUN_DUE_DONE = re.compile(
    r"Task monitor\.run_due_collections\[[^\]]+\] succeeded in [\d.e-]+s: (\[.*\])"
)
COLLECT_DONE = re.compile(
    r"Task monitor\.collect_source\[[^\]]+\] succeeded in [\d.e-]+s: (\{.*\})"
)


class BeatProcess:
    """``celery -A workers.celery_app beat`` in its own process group, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, schedule_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.schedule_path = schedule_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> BeatProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "workers.celery_app",
                    "beat",
                    "--loglevel",
                    "info",
                    "-s",
                    str(self.schedule_path),
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def stop(self) -> None:
        """SIGTERM the group, SIGKILL it if beat has not left within half a minute."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def ticks(self) -> int:
        """How many times this beat has sent ``run_due_collections`` so far."""
        return len(SENT_RUN_DUE.findall(self.log()))


@pytest.fixture(autouse=True)
def empty_broker(redis_url: str) -> Iterator[None]:
    """An empty Redis database before the test and after it (beats leave tasks behind).

    Autouse, so it is set up before the worker and beat fixtures and torn down after they stopped.
    """
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield
    client.flushdb()
    client.close()


@pytest.fixture
def start_beat(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[], BeatProcess]]:
    """Start beats ticking every second; every one started is stopped at the end of the test."""
    started: list[BeatProcess] = []
    env = {**worker_env, "MONITOR_BEAT_INTERVAL_SECONDS": "1"}

    def start() -> BeatProcess:
        number = len(started)
        beat = BeatProcess(env, tmp_path / f"beat-{number}.log", tmp_path / f"beat-{number}.db")
        started.append(beat.start())
        return beat

    yield start
    for beat in started:
        beat.stop()


@pytest.fixture
def sessions(postgres_url: str) -> Any:
    """Sessions on the emptied test database."""
    _truncate(postgres_url)
    return session_factory(postgres_url)


def add_fake_source(sessions: Any, name: str, every_seconds: int | None) -> None:
    """A ``fake`` source replaying two posts without images."""
    posts = [
        {"external_id": f"{name}-{number}", "text": f"post {number} of {name}", "image_urls": []}
        for number in range(2)
    ]
    with session_scope(sessions) as session:
        repository.add_source(
            session=session,
            name=name,
            kind="fake",
            options=validate_options("fake", {"posts": posts}),
            every_seconds=every_seconds,
            now=datetime.now(UTC),
        )


def collected_sources(sessions: Any) -> set[str]:
    with session_scope(sessions) as session:
        return set(
            session.scalars(select(Source.name).where(Source.last_collected_at.is_not(None)))
        )


def runs_per_source(sessions: Any) -> dict[str, int]:
    with session_scope(sessions) as session:
        rows = session.execute(
            select(Source.name, func.count(CollectionRun.id))
            .outerjoin(CollectionRun, CollectionRun.source_id == Source.id)
            .group_by(Source.name)
        ).all()
    return {name: count for name, count in rows}


class WorkerLogs:
    """What the workers' logs say the ``run_due_collections`` and ``collect_source`` tasks did."""

    def __init__(self, workers: list[WorkerProcess]) -> None:
        self.workers = workers

    def _text(self) -> str:
        return "\n".join(worker.log_path.read_text(errors="replace") for worker in self.workers)

    def run_due_results(self) -> list[list[str]]:
        """The sources each finished ``run_due_collections`` task queued, one list per task."""
        return [ast.literal_eval(match) for match in RUN_DUE_DONE.findall(self._text())]

    def collect_results(self) -> list[dict[str, Any]]:
        """The report of each finished ``collect_source`` task."""
        return [ast.literal_eval(match) for match in COLLECT_DONE.findall(self._text())]

    def queued_collections(self) -> Counter[str]:
        """How often each source was queued for collection."""
        return Counter(name for result in self.run_due_results() for name in result)

    def settled(self, *, empty_run_due_needed: int) -> bool:
        """Enough ticks found nothing due, and every queued collection has finished."""
        empty_run_due = sum(1 for result in self.run_due_results() if not result)
        queued = sum(self.queued_collections().values())
        return empty_run_due >= empty_run_due_needed and len(self.collect_results()) == queued

    def tail(self) -> str:
        return "\n".join(worker.log() for worker in self.workers)


def test_two_beats_collect_each_due_source_exactly_once(
    sessions: Any,
    start_worker: Callable[..., WorkerProcess],
    start_beat: Callable[[], BeatProcess],
) -> None:
    for name in SCHEDULED:
        add_fake_source(sessions, name, EVERY_SECONDS)
    add_fake_source(sessions, UNSCHEDULED, None)

    beats = [start_beat(), start_beat()]

    def beat_logs() -> str:
        return "\n".join(beat.log()[-3000:] for beat in beats)

    wait_for(
        lambda: all(beat.ticks() >= BEAT_TICKS_BEFORE_WORKERS for beat in beats),
        timeout=60,
        what=f"both beats to send run_due_collections {BEAT_TICKS_BEFORE_WORKERS} times",
        on_timeout=beat_logs,
    )
    workers = [
        start_worker("collect,fetch", ["--hostname", f"collector{number}@%h"])
        for number in range(2)
    ]
    logs = WorkerLogs(workers)

    def diagnostics() -> str:
        return f"{beat_logs()}\n{logs.tail()}\nruns: {runs_per_source(sessions)}"

    wait_for(
        lambda: collected_sources(sessions) == set(SCHEDULED),
        timeout=120,
        what="every scheduled source collected by the workers",
        on_timeout=diagnostics,
    )
    ticks_when_collected = [beat.ticks() for beat in beats]
    wait_for(
        lambda: (
            all(
                beat.ticks() >= ticks + FURTHER_TICKS
                for beat, ticks in zip(beats, ticks_when_collected, strict=True)
            )
            and logs.settled(empty_run_due_needed=FURTHER_TICKS)
        ),
        timeout=60,
        what=f"{FURTHER_TICKS} more ticks of each beat and every queued collection finished",
        on_timeout=diagnostics,
    )

    queued = logs.queued_collections()
    # The backlog of run_due tasks queued every scheduled source more than once: the duplicates
    # really reached the workers, and only the lock and the due re-check kept them out.
    assert all(queued[name] >= 2 for name in SCHEDULED), queued
    assert UNSCHEDULED not in queued
    assert runs_per_source(sessions) == {**dict.fromkeys(SCHEDULED, 1), UNSCHEDULED: 0}
    performed = Counter(
        result["source"] for result in logs.collect_results() if result["skipped"] is None
    )
    assert performed == Counter(SCHEDULED)
