"""A real Celery worker process against the local Redis and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """``celery -A workers.celery_app worker`` in its own process group."""

    def __init__(self, env: dict[str, str], log_path: Path, queues: str, extra: list[str]) -> None:
        self.env = env
        self.log_path = log_path
        self.queues = queues
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.celery_app",
                "worker",
                "--queues",
                self.queues,
                "--concurrency",
                "1",
                "--loglevel",
                "info",
                "--without-gossip",
                "--without-mingle",
                *self.extra,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL the whole group: the main process and its pool children, no goodbye."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


@pytest.fixture
def worker_env(postgres_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for worker processes: the test database, broker and a tiny model."""
    import redis

    from monitor.inference.tiny import write_tiny_model

    # Messages a killed worker left unacknowledged in an earlier test must not reach this one.
    redis.Redis.from_url(redis_url).flushdb()

    model_dir = write_tiny_model(
        tmp_path / "model", labels=["acme", "globex"], seed=3, no_logo_threshold=0.0
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(
        MONITOR_HOME=str(tmp_path / "home"),
        MONITOR_DATABASE_URL=postgres_url,
        MONITOR_BROKER_URL=redis_url,
        MONITOR_MODEL_DIR=str(model_dir),
        MONITOR_ALLOW_PRIVATE_IMAGE_HOSTS="true",
        MONITOR_BROKER_VISIBILITY_TIMEOUT_SECONDS="4",
        MONITOR_FETCH_BATCH_SIZE="4",
        MONITOR_CLASSIFY_BATCH_SIZE="4",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.fixture
def start_worker(
    worker_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start workers; every one started is stopped at the end of the test."""
    started: list[WorkerProcess] = []

    def start(
        queues: str = "collect,fetch,classify", extra: list[str] | None = None
    ) -> WorkerProcess:
        worker = WorkerProcess(
            worker_env, tmp_path / f"worker-{len(started)}.log", queues, extra or []
        )
        started.append(worker.start())
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    on_timeout: Callable[[], str] = lambda: "",
) -> None:
    """Poll an asynchronous outcome until it holds, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{on_timeout()}")
