"""The command line as a user runs it: exit codes, one-line errors, and the main job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from monitor.cli import app, main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def registered_commands() -> set[str]:
    names = {command.name or command.callback.__name__ for command in app.registered_commands}
    return names | {group.name for group in app.registered_groups if group.name}


def test_every_command_has_help(capsys: pytest.CaptureFixture[str], cli_env: Path) -> None:
    expected = {"sources", "db", "collect", "requeue", "status", "worker", "beat", "report"}
    expected |= {"train", "evaluate", "classify", "demo"}
    assert expected <= registered_commands()
    for command in sorted(expected):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0, command
        assert "Usage" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sources", "add", "x", "--kind", "nosuch"], "unknown source kind 'nosuch'"),
        (["sources", "add", "x", "--kind", "rss"], "invalid options for a rss source"),
        (
            ["sources", "add", "x", "--kind", "folder", "--path", ".", "--every", "soon"],
            "invalid interval",
        ),
        (["collect"], "name one or more sources, or pass --all"),
        (["collect", "ghost"], "no source named 'ghost'"),
        (
            ["report", "--brand", "acme", "--since", "yesterday"],
            "--since: 'yesterday' is not a date",
        ),
        (["worker"], "workers need a broker"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_non_zero_exit(
    capsys: pytest.CaptureFixture[str], cli_env: Path, argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code != 0
    assert message in " ".join(err.split())
    assert "Traceback" not in err + out


def test_bad_configuration_is_reported_before_anything_runs(
    capsys: pytest.CaptureFixture[str], cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITOR_BROKER_URL", "http://not-a-broker")
    code, _, err = run(capsys, "status")
    assert code == 1
    assert "MONITOR_BROKER_URL" in err


def test_sources_can_be_added_listed_scheduled_and_removed(
    capsys: pytest.CaptureFixture[str], cli_env: Path, tmp_path: Path
) -> None:
    assert (
        run(capsys, "sources", "add", "pics", "--kind", "folder", "--path", str(tmp_path))[0] == 0
    )
    assert run(capsys, "sources", "update", "pics", "--every", "15m")[0] == 0
    code, out, _ = run(capsys, "sources", "list")
    assert code == 0 and "pics" in out and "15m" in out
    code, _, err = run(
        capsys, "sources", "add", "pics", "--kind", "folder", "--path", str(tmp_path)
    )
    assert code == 1 and "already exists" in err
    assert run(capsys, "sources", "remove", "pics")[0] == 0
    assert "no sources yet" in run(capsys, "sources", "list")[1]


def write_photos(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for number in range(count):
        Image.new("RGB", (96, 72), (30 * number, 120, 200)).save(folder / f"photo{number}.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")


def test_collect_classify_and_report_on_the_embedded_default(
    capsys: pytest.CaptureFixture[str],
    cli_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from monitor.config import get_settings
    from monitor.inference.tiny import write_tiny_model

    model = write_tiny_model(tmp_path / "model", labels=["acme", "globex"], no_logo_threshold=0.0)
    monkeypatch.setenv("MONITOR_MODEL_DIR", str(model))
    get_settings.cache_clear()
    write_photos(tmp_path / "photos", 5)
    run(capsys, "sources", "add", "pics", "--kind", "folder", "--path", str(tmp_path / "photos"))

    code, out, _ = run(capsys, "collect", "pics")
    assert code == 0
    assert "5 classified, 5 detections stored" in " ".join(out.split())
    code, out, _ = run(capsys, "status")
    assert "classified 5" in out and "failed 1" in out

    brands = {}
    for brand in ("acme", "globex"):
        code, out, _ = run(capsys, "report", "--brand", brand.upper(), "--format", "json")
        assert code == 0
        brands[brand] = json.loads(out)
    assert sum(report["detections"] for report in brands.values()) == 5
    for report in brands.values():
        assert {"brand", "detections", "posts", "by_day", "top_authors"} <= set(report)

    code, _, err = run(capsys, "report", "--brand", "initech")
    assert code == 1 and "known brands: acme, globex" in err

    again, out, _ = run(capsys, "collect", "--all")
    assert again == 0 and "0 classified" in " ".join(out.split())


def collect_acme_photos(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    count: int,
) -> None:
    """``count`` photos collected and classified as "acme" (a tiny model naming it everywhere)."""
    from monitor.config import get_settings
    from monitor.inference.tiny import write_tiny_model

    model = write_tiny_model(tmp_path / "model", labels=["acme"], no_logo_threshold=0.0)
    monkeypatch.setenv("MONITOR_MODEL_DIR", str(model))
    get_settings.cache_clear()
    write_photos(tmp_path / "photos", count)
    run(capsys, "sources", "add", "pics", "--kind", "folder", "--path", str(tmp_path / "photos"))
    run(capsys, "collect", "pics")


def test_report_draws_a_plot(
    capsys: pytest.CaptureFixture[str],
    cli_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collect_acme_photos(capsys, tmp_path, monkeypatch, count=2)
    plot = tmp_path / "acme.png"
    code, _, _ = run(capsys, "report", "--brand", "acme", "--format", "csv", "--plot", str(plot))
    assert code == 0
    assert Image.open(plot).size[0] > 500


def test_db_upgrade_migrates_the_configured_postgres(
    capsys: pytest.CaptureFixture[str],
    cli_env: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from monitor.config import get_settings

    monkeypatch.setenv("MONITOR_DATABASE_URL", postgres_url)
    get_settings.cache_clear()
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0 and "newest schema" in out


@pytest.mark.parametrize(
    "argv", [["worker", "--queue", "x"], ["db"], ["sources", "add"], ["nosuchcommand"]]
)
def test_usage_errors_exit_non_zero_without_a_traceback(
    capsys: pytest.CaptureFixture[str], cli_env: Path, argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code != 0
    assert "Traceback" not in out + err
    assert "Usage" in out + err


def test_a_source_that_keeps_failing_is_unhealthy_in_status(
    capsys: pytest.CaptureFixture[str], cli_env: Path
) -> None:
    assert (
        run(capsys, "sources", "add", "dead", "--kind", "fake", "-o", "fail_with=unavailable")[0]
        == 0
    )
    assert run(capsys, "sources", "add", "empty", "--kind", "fake")[0] == 0
    for _ in range(3):
        code, out, _ = run(capsys, "collect", "--all")
        assert code == 1  # one source failed; the other was still collected
        assert "unavailable" in out
    code, out, _ = run(capsys, "status")
    assert code == 0
    dead = next(line for line in out.splitlines() if "dead" in line)
    empty = next(line for line in out.splitlines() if "empty" in line)
    assert "unhealthy" in dead and "3" in dead
    assert "ok" in empty and "unhealthy" not in empty


def test_a_misspelt_setting_stops_the_program_with_the_closest_name(
    capsys: pytest.CaptureFixture[str], cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITOR_ALLOW_PRIVATE_URLS", "true")
    code, out, err = run(capsys, "status")
    assert code == 1
    assert "unknown setting MONITOR_ALLOW_PRIVATE_URLS" in err
    assert "MONITOR_ALLOW_PRIVATE_IMAGE_HOSTS" in err
    assert "Traceback" not in err + out


def test_report_writes_every_format_to_out(
    capsys: pytest.CaptureFixture[str],
    cli_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collect_acme_photos(capsys, tmp_path, monkeypatch, count=3)
    out = tmp_path / "reports"
    for output_format in ("html", "json", "csv", "table"):
        target = out / f"acme.{output_format}"
        code, printed, err = run(
            capsys, "report", "--brand", "acme", "--format", output_format, "--out", str(target)
        )
        assert (code, printed, err) == (0, "", "")
        assert target.stat().st_size > 0
    page = (out / "acme.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # every photo inline (no server needed): the three posts, some in more than one section
    assert page.count("<img ") == page.count('<img src="data:image/jpeg;base64,') >= 3
    assert "threshold 0.000" in page  # the doubtful band comes from the configured model
    assert json.loads((out / "acme.json").read_text())["detections"] == 3
    assert (out / "acme.csv").read_text().startswith("brand,day,detections,posts")
    assert "detections: 3" in (out / "acme.table").read_text()
    assert not list(out.glob("*.partial"))

    code, _, err = run(capsys, "report", "--brand", "acme", "--format", "html", "--out", str(out))
    assert code == 1 and f"--out {out}: cannot write the file" in " ".join(err.split())
    assert "Traceback" not in err


def test_json_and_html_reports_on_postgres(
    capsys: pytest.CaptureFixture[str],
    cli_env: Path,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL sums followers as NUMERIC: the reports still write plain numbers."""
    from monitor.config import get_settings, load_settings
    from monitor.pipeline import Services
    from monitor.storage.db import session_factory
    from tests.analytics.factories import PhotoPost, store_photo_posts

    services = Services(
        settings=load_settings(home=tmp_path, database_url=database_url),
        sessions=session_factory(database_url),
    )
    store_photo_posts(
        services,
        [
            PhotoPost("1", [("acme", 0.9, (10, 10, 90, 90))], author="bo", followers=3_000_000),
            PhotoPost("2", [("acme", 0.8, (10, 10, 90, 90))], author="bo", followers=3_000_000),
        ],
    )
    monkeypatch.setenv("MONITOR_DATABASE_URL", database_url)
    get_settings.cache_clear()
    code, out, err = run(capsys, "report", "--brand", "acme", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["top_authors"][0]["reach"] == 6_000_000
    page = tmp_path / "acme.html"
    code, _, err = run(capsys, "report", "--brand", "acme", "--format", "html", "--out", str(page))
    assert code == 0, err
    assert "6,000,000" in page.read_text(encoding="utf-8")
