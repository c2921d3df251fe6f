"""Shared fixtures: real PostgreSQL and Redis, a clean database per test, small images.

Postgres and Redis are used for real. When one is unreachable its tests are skipped with the reason,
unless ``MONITOR_REQUIRE_SERVICES=1`` (set by ``.ci/run``), which turns the skip into a failure.
"""

from __future__ import annotations

import io
import os
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.config import Settings, get_settings, load_settings
from monitor.pipeline import Services
from monitor.storage.db import get_engine, session_factory, upgrade_database

POSTGRES_ADMIN_URL = os.environ.get(
    "MONITOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("MONITOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Parallel runs on one server (several checkouts) each give their own name.
TEST_DATABASE = os.environ.get("MONITOR_TEST_DATABASE", "monitor_test")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REQUIRE_SERVICES = os.environ.get("MONITOR_REQUIRE_SERVICES") == "1"

TABLES = (
    "brand_coendorsement_totals, brand_pair_totals, brand_account_totals, brand_post_days, "
    "brand_detection_days, post_brands, "
    "detections, classifications, post_images, image_data, images, posts, collection_runs, sources"
)


def _reachable(url: str, default_port: int) -> str | None:
    parts = urlsplit(url.replace("postgresql+psycopg", "postgresql"))
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return None
    except OSError as exc:
        return f"{parts.hostname}:{parts.port or default_port} unreachable ({exc})"


def _skip_or_fail(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"MONITOR_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A dedicated, migrated database on the real PostgreSQL server."""
    problem = _reachable(POSTGRES_ADMIN_URL, 5432)
    if problem:
        _skip_or_fail(f"PostgreSQL: {problem}")
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": TEST_DATABASE},
        )
        connection.execute(text(f"DROP DATABASE IF EXISTS {TEST_DATABASE}"))
        connection.execute(text(f"CREATE DATABASE {TEST_DATABASE}"))
    admin.dispose()
    url = make_url(POSTGRES_ADMIN_URL).set(database=TEST_DATABASE).render_as_string(False)
    upgrade_database(url)
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis server (a database number of its own, emptied first)."""
    problem = _reachable(REDIS_URL, 6379)
    if problem:
        _skip_or_fail(f"Redis: {problem}")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


def _truncate(url: str) -> None:
    engine = get_engine(url)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES.split(", "):
                connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs on the embedded SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'monitor.db'}"
        upgrade_database(url)
        yield url
        get_engine(url).dispose()
        return
    url = request.getfixturevalue("postgres_url")
    _truncate(url)
    yield url


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test: its own home, private hosts allowed (local test servers)."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"home": tmp_path / "home", "allow_private_image_hosts": True}
        values.update(overrides)
        return load_settings(**values)

    return build


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 16, 9, 0, tzinfo=UTC))


@pytest.fixture
def services(
    database_url: str, make_settings: Callable[..., Settings], clock: FixedClock
) -> Services:
    """Pipeline services on the test database with a hand-moved clock."""
    settings = make_settings(database_url=database_url)
    return Services(settings=settings, sessions=session_factory(database_url), clock=clock)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Point the CLI's settings (read from the environment) at a fresh home; re-read them."""
    home = tmp_path / "cli-home"
    monkeypatch.setenv("MONITOR_HOME", str(home))
    monkeypatch.setenv("MONITOR_ALLOW_PRIVATE_IMAGE_HOSTS", "true")
    for key in (
        "MONITOR_DATABASE_URL",
        "MONITOR_BROKER_URL",
        "MONITOR_MODEL_DIR",
        "MONITOR_CONFIG",
    ):
        monkeypatch.delenv(key, raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def jpeg_bytes(
    color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)
) -> bytes:
    """A small real JPEG."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def shared_dir() -> Path:
    """``../shared`` beside the project (datasets, weights), or skip."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not present")
    return SHARED


class ServedFiles:
    """What a local test HTTP server answers: path -> (status, content type, body)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        self.hits: dict[str, int] = {}
        self.gates: dict[str, tuple[threading.Event, threading.Event]] = {}

    def add_gated(self, path: str, body: bytes) -> tuple[str, threading.Event, threading.Event]:
        """A path whose answer waits until the test opens the gate: (url, reached, open)."""
        reached, opened = threading.Event(), threading.Event()
        self.gates[path] = (reached, opened)
        return self.add(path, body), reached, opened

    def add(
        self, path: str, body: bytes, content_type: str = "image/jpeg", status: int = 200
    ) -> str:
        self.routes[path] = (status, content_type, body)
        return self.base_url + path


@pytest.fixture
def file_server() -> Iterator[ServedFiles]:
    """A real HTTP server on 127.0.0.1 serving whatever the test adds."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    served: ServedFiles

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.hits[self.path] = served.hits.get(self.path, 0) + 1
            if self.path in served.gates:
                reached, opened = served.gates[self.path]
                reached.set()
                opened.wait(timeout=120)
            status, content_type, body = served.routes.get(
                self.path, (404, "text/plain", b"not found")
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served = ServedFiles(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served
    server.shutdown()
    server.server_close()
