"""Progress off a terminal is plain lines; `monitor collect` and `monitor status` show what happens."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import update

from monitor.cli.progress import PlainProgress
from monitor.storage.tables import Image
from tests.cli.test_cli import run, write_photos


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_progress_prints_stages_tenths_the_end_and_a_heartbeat() -> None:
    stream, clock = io.StringIO(), Clock()
    with PlainProgress(stream, every_seconds=10.0, clock=clock) as progress:
        task = progress.add_task("starting", total=None, detail="")
        progress.update(task, description="fitting head 1/2", completed=0, total=100, detail="")
        for step in range(1, 101):
            clock.now += 0.01
            progress.update(task, completed=step, detail=f"loss {1 / step:.2f}")
        progress.update(task, description="mining", completed=0, total=1000, detail="")
        clock.now += 11
        progress.update(task, completed=5, detail="windows")
        progress.update(task, completed=6, detail="windows")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "fitting head 1/2: 0/100"
    assert lines[1:11] == [
        f"fitting head 1/2: {n}/100 loss {1 / n:.2f}" for n in range(10, 101, 10)
    ]
    assert lines[11:] == ["mining: 0/1000", "mining: 5/1000 windows"]  # not 6: too soon


def test_collect_shows_progress_lines_when_not_on_a_terminal(
    capsys: pytest.CaptureFixture[str], cli_env: Path, tmp_path: Path
) -> None:
    write_photos(tmp_path / "photos", 3)
    run(capsys, "sources", "add", "pics", "--kind", "folder", "--path", str(tmp_path / "photos"))
    code, _, err = run(capsys, "collect", "pics")
    assert code == 0
    assert "source 1/1 pics: 0" in err
    assert "source 1/1 pics: 4/4 images fetched/classified" in err


def test_status_shows_images_waiting_to_retry_with_their_last_error(
    capsys: pytest.CaptureFixture[str], cli_env: Path, tmp_path: Path
) -> None:
    from monitor.cli.common import services

    write_photos(tmp_path / "photos", 1)
    run(capsys, "sources", "add", "pics", "--kind", "folder", "--path", str(tmp_path / "photos"))
    run(capsys, "collect", "pics")
    with services().sessions.begin() as session:
        session.execute(
            update(Image)
            .where(Image.url.like("%photo0.jpg"))
            .values(state="queued", attempts=2, error="cannot fetch x: timed out after 10 s")
        )
    code, out, _ = run(capsys, "status")
    text = " ".join(out.split())
    assert code == 0
    assert "waiting to retry: 1 images" in text
    assert "attempt 2 of 5" in text and "last error: cannot fetch x: timed out after 10 s" in text
