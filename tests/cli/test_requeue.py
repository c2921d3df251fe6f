"""`monitor requeue` does what the dead-broker error tells the user it will."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis

from monitor.config import get_settings
from monitor.queue import QUEUE_FETCH
from tests.cli.test_cli import run, write_photos

pytestmark = pytest.mark.redis


def dead_broker_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_work_stored_while_the_broker_was_down_is_queued_by_requeue(
    capsys: pytest.CaptureFixture[str],
    cli_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
) -> None:
    write_photos(tmp_path / "photos", 3)
    run(capsys, "sources", "add", "pics", "--kind", "folder", "--path", str(tmp_path / "photos"))
    monkeypatch.setenv("MONITOR_BROKER_URL", dead_broker_url())
    get_settings.cache_clear()

    code, _, err = run(capsys, "collect", "pics")
    assert code == 1
    assert "`monitor requeue` queues it again once the broker is back" in " ".join(err.split())

    client = redis.Redis.from_url(redis_url)
    client.flushdb()  # this checkout's own test database
    monkeypatch.setenv("MONITOR_BROKER_URL", redis_url)
    get_settings.cache_clear()
    code, out, _ = run(capsys, "requeue")
    assert code == 0
    assert "re-queued 4 images to fetch and 0 to classify" in out  # 3 photos and a broken one
    assert client.llen(QUEUE_FETCH) == 1  # one batch of four
