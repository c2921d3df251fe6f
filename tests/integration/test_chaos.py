"""Chaos: workers SIGKILLed and the broker restarted empty, healed by beat alone on its defaults.

A few hundred generated images go through collect -> fetch -> classify on PostgreSQL, real Celery
workers and a real beat, against a ``redis-server`` this test starts on a free port (keeping
nothing on disk, the worst case), never the shared one. Mid-run a worker is killed whole, the broker
is killed and started again empty (losing every queued and unacknowledged task), then another
worker is killed. Nobody calls ``monitor requeue``: beat, on its default settings, must find the lost
work, and every image must be classified exactly once within three minutes of the broker's return.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.collectors.base import validate_options
from monitor.config import load_settings
from monitor.pipeline import Services
from monitor.queue import CeleryWorkQueue
from monitor.storage import repository
from monitor.storage.db import session_factory, session_scope
from monitor.storage.tables import Classification, DetectionRow, ImageState
from tests.conftest import _truncate, jpeg_bytes
from tests.integration.conftest import WorkerProcess, wait_for
from tests.workers.test_beat_schedule import BeatProcess

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

IMAGES = 200  # the most one collection takes (max_posts_per_run)
HEAL_BOUND_SECONDS = 180  # the promise: healed within three minutes of the broker coming back
SERVE_DELAY_SECONDS = 0.05  # each image answer is throttled so work is still in flight when killed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A private ``redis-server`` keeping nothing on disk, killed and restarted by the test."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis.from_url(self.url)
        wait_for(lambda: _answers(client), timeout=30, what="redis-server to answer")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def _answers(client: object) -> bool:
    import redis

    try:
        return bool(client.ping())  # type: ignore[attr-defined]
    except redis.RedisError:
        return False


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


@pytest.fixture
def image_server() -> Iterator[str]:
    """Serves /N.jpg, a distinct small JPEG per N, each answer throttled a little."""
    bodies = {
        f"/{n}.jpg": jpeg_bytes((n % 256, 255 - n % 256, 90), (48, 40)) for n in range(IMAGES)
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.get(self.path)
            time.sleep(SERVE_DELAY_SECONDS)  # throttling the server, not waiting for an outcome
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def classified(sessions: object) -> int:
    with session_scope(sessions) as session:  # type: ignore[arg-type]
        return repository.image_state_counts(session=session)[ImageState.CLASSIFIED]


def test_broker_loss_and_killed_workers_heal_without_anyone(
    postgres_url: str,
    broker: RedisServer,
    image_server: str,
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    _truncate(postgres_url)
    sessions = session_factory(postgres_url)
    env = {k: v for k, v in worker_env.items() if not k.startswith("MONITOR_")}
    env.update(
        {k: worker_env[k] for k in ("MONITOR_HOME", "MONITOR_DATABASE_URL", "MONITOR_MODEL_DIR")},
        MONITOR_BROKER_URL=broker.url,
        MONITOR_ALLOW_PRIVATE_IMAGE_HOSTS="true",
    )  # beat, requeue and visibility settings stay at their defaults
    settings = load_settings(
        home=tmp_path / "home", database_url=postgres_url, broker_url=broker.url
    )
    services = Services(settings=settings, sessions=sessions)
    posts = [
        {
            "external_id": str(n),
            "platform": "fake",
            "author_handle": f"user{n % 7}",
            "created_at": "2026-11-20T10:00:00Z",
            "image_urls": [f"{image_server}/{n}.jpg"],
        }
        for n in range(IMAGES)
    ]
    with session_scope(sessions) as session:
        repository.add_source(
            session=session,
            name="feed",
            kind="fake",
            options=validate_options("fake", {"posts": posts}),
            every_seconds=None,
            now=services.clock(),
        )
    workers = [
        WorkerProcess(env, tmp_path / f"worker-{n}.log", "collect,fetch,classify", []).start()
        for n in range(2)
    ]
    beat = BeatProcess(env, tmp_path / "beat.log", tmp_path / "beat-schedule").start()

    def logs() -> str:
        with session_scope(sessions) as session:
            counts = repository.image_state_counts(session=session)
        requeues = [
            line
            for w in workers
            for line in w.log_path.read_text(errors="replace").splitlines()
            if "requeue_stale" in line and "succeeded" in line
        ]
        return f"images: {counts}\nrequeue runs: {requeues}\n" + workers[-1].log()[-3000:]

    try:
        CeleryWorkQueue(
            broker_url=broker.url,
            fetch_batch_size=settings.fetch_batch_size,
            classify_batch_size=settings.classify_batch_size,
            visibility_timeout=settings.broker_visibility_timeout_seconds,
        ).collect("feed", scheduled=False)

        wait_for(
            lambda: classified(sessions) >= 20, timeout=240, what="work to start", on_timeout=logs
        )
        workers[0].kill()  # SIGKILL the whole worker, mid-task
        workers.append(
            WorkerProcess(env, tmp_path / "worker-2.log", "collect,fetch,classify", []).start()
        )

        wait_for(lambda: classified(sessions) >= 60, timeout=240, what="more work", on_timeout=logs)
        broker.kill()  # every queued and unacknowledged task is gone
        lost_at = classified(sessions)
        broker.start()
        back = time.monotonic()

        wait_for(
            lambda: classified(sessions) >= lost_at + 10,
            timeout=HEAL_BOUND_SECONDS,
            what="work to go on after the broker restart",
            on_timeout=logs,
        )
        workers[1].kill()
        remaining = HEAL_BOUND_SECONDS - (time.monotonic() - back)
        wait_for(
            lambda: classified(sessions) == IMAGES,
            timeout=max(remaining, 1.0),
            what=f"all {IMAGES} images classified within {HEAL_BOUND_SECONDS}s of the broker's return",
            on_timeout=logs,
        )
    finally:
        for worker in workers:
            worker.stop()
        beat.stop()

    with session_scope(sessions) as session:
        counts = repository.image_state_counts(session=session)
        per_image = session.execute(
            select(Classification.image_id, func.count()).group_by(Classification.image_id)
        ).all()
        detections = session.scalar(select(func.count()).select_from(DetectionRow))
    assert counts[ImageState.CLASSIFIED] == IMAGES, counts  # 0 lost
    assert len(per_image) == IMAGES and all(n == 1 for _, n in per_image)  # 0 duplicated
    assert detections == IMAGES  # the tiny model names a brand in every image, once
    print(
        f"chaos: {IMAGES} images, 2 workers SIGKILLed, broker restarted empty with "
        f"{IMAGES - lost_at} not yet classified; all classified once "
        f"{time.monotonic() - back:.0f}s after the broker's return"
    )
