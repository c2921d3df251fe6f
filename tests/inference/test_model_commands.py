"""The train, evaluate and classify commands, on a Typer app of their own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from monitor.cli import model_commands
from monitor.config import get_settings
from monitor.exceptions import ConfigurationError, ModelError
from monitor.inference.model_dir import read_metadata
from monitor.inference.tiny import write_tiny_model
from tests.inference.factories import draw_photo, write_brand_folders, write_flickr_dataset

LABELS = ["acme", "globex"]


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[typer.Typer]:
    """The model commands on an app of their own, with settings read from a fresh home."""
    monkeypatch.setenv("MONITOR_HOME", str(tmp_path / "home"))
    for key in ("MONITOR_MODEL_DIR", "MONITOR_CONFIG", "MONITOR_BACKBONE_WEIGHTS"):
        monkeypatch.delenv(key, raising=False)
    get_settings.cache_clear()
    application = typer.Typer()
    model_commands.register(application)
    yield application
    get_settings.cache_clear()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return write_tiny_model(tmp_path / "model", labels=LABELS, no_logo_threshold=0.0)


def _pictures(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for index, (brand, size) in enumerate([("acme", (120, 90)), ("globex", (64, 200))]):
        path = folder / f"{index}.jpg"
        draw_photo(size, [(brand, (10, 10, 50, 50))], seed=index).save(path)
        paths.append(path)
    return paths


def test_classify_json_gives_one_line_per_image_with_every_field(
    app: typer.Typer, model: Path, tmp_path: Path
) -> None:
    paths = _pictures(tmp_path / "pictures")
    result = CliRunner().invoke(
        app, ["classify", "--model", str(model), "--json", *map(str, paths)]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["path"] for record in records] == [str(path) for path in paths]
    for record in records:
        assert set(record) == {"path", "knows_no_logo", "brand", "probability", "box", "detections"}
        assert record["knows_no_logo"] is True
        assert record["brand"] in LABELS  # threshold 0: every picture names a brand
        assert record["box"] == record["detections"][0]["box"]
        x1, y1, x2, y2 = record["box"]
        assert 0 <= x1 < x2 and 0 <= y1 < y2
        for detection in record["detections"]:
            assert set(detection) == {"brand", "probability", "box"}


def test_classify_reports_a_bad_image_and_goes_on(
    app: typer.Typer, model: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "pictures"
    good = _pictures(folder)
    (folder / "broken.png").write_bytes(b"this is not a picture")
    result = CliRunner().invoke(app, ["classify", "--model", str(model), "--json", str(folder)])
    assert result.exit_code == 1
    records = {
        Path(record["path"]).name: record for record in map(json.loads, result.stdout.splitlines())
    }
    assert set(records) == {"0.jpg", "1.jpg", "broken.png"}
    assert set(records["broken.png"]) == {"path", "error"}
    assert "not a recognised image" in records["broken.png"]["error"]
    assert all("brand" in records[path.name] for path in good)


def test_classify_without_json_prints_brands_or_no_logo(app: typer.Typer, tmp_path: Path) -> None:
    never = write_tiny_model(tmp_path / "never", labels=LABELS, no_logo_threshold=1.0)
    (path,) = _pictures(tmp_path / "pictures")[:1]
    result = CliRunner().invoke(app, ["classify", "--model", str(never), str(path)])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"{path}: no logo"


def test_classify_with_a_closed_set_model_names_a_class_and_says_it_has_no_no_logo(
    app: typer.Typer, tmp_path: Path
) -> None:
    closed = write_tiny_model(
        tmp_path / "closed", labels=LABELS, no_logo_threshold=1.0, knows_no_logo=False
    )
    paths = _pictures(tmp_path / "pictures")
    result = CliRunner().invoke(
        app, ["classify", "--model", str(closed), "--json", *map(str, paths)]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["knows_no_logo"] for record in records] == [False, False]
    assert all(record["brand"] in LABELS for record in records)
    assert all(len(record["detections"]) == 1 for record in records)
    (note,) = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert note.endswith("never answers 'no logo'")  # one line, whatever the terminal's width


def test_classify_uses_the_configured_model_by_default(
    app: typer.Typer, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITOR_MODEL_DIR", str(model))
    get_settings.cache_clear()
    (path,) = _pictures(tmp_path / "pictures")[:1]
    result = CliRunner().invoke(app, ["classify", "--json", str(path)])
    assert result.exit_code == 0 and json.loads(result.stdout)["brand"] in LABELS


def test_classify_with_a_broken_model_directory_is_a_model_error(
    app: typer.Typer, tmp_path: Path
) -> None:
    (path,) = _pictures(tmp_path / "pictures")[:1]
    result = CliRunner().invoke(app, ["classify", "--model", str(tmp_path), str(path)])
    assert isinstance(result.exception, ModelError)
    assert "metadata.json is missing" in str(result.exception)


def test_classify_a_missing_path_is_a_configuration_error(app: typer.Typer, model: Path) -> None:
    result = CliRunner().invoke(app, ["classify", "--model", str(model), "/no/such/picture.jpg"])
    assert isinstance(result.exception, ConfigurationError)


def test_evaluate_prints_a_table_or_json(app: typer.Typer, model: Path, tmp_path: Path) -> None:
    dataset = write_brand_folders(tmp_path / "set", brands=LABELS, per_brand=2)
    table = CliRunner().invoke(app, ["evaluate", "--model", str(model), "--dataset", str(dataset)])
    assert table.exit_code == 0, table.output
    assert "brand accuracy on logo photos" in table.stdout and "globex" in table.stdout
    matrix = tmp_path / "matrix.png"
    as_json = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--model",
            str(model),
            "--dataset",
            str(dataset),
            "--json",
            "--confusion-matrix",
            str(matrix),
        ],
    )
    assert as_json.exit_code == 0
    report = json.loads(as_json.stdout)  # progress goes to standard error
    assert report["logo_images"] == 4 and report["confusion_matrix_png"] == str(matrix)
    assert matrix.is_file()


def test_train_writes_a_model_and_prints_its_summary(app: typer.Typer, tmp_path: Path) -> None:
    dataset = write_brand_folders(
        tmp_path / "set", brands=LABELS, per_brand=4, no_logo_folder="none"
    )
    out = tmp_path / "trained"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--dataset",
            str(dataset),
            "--out",
            str(out),
            "--epochs-head",
            "1",
            "--epochs-finetune",
            "0",
            "--image-size",
            "32",
            "--weights",
            "random",
            "--no-logo-folder",
            "none",
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    metadata = read_metadata(out)
    assert metadata.labels == tuple(LABELS) and metadata.backbone_weights == "random"
    assert f"model {metadata.version} written to {out}" in " ".join(result.stdout.split())
    assert "no-logo threshold" in result.stdout
    # four photos a class are too few, and said so before training starts
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert any(
        "fewer than 10 training photos" in line and line.endswith("missed or confused")
        for line in warnings
    ), result.stderr


def test_train_with_bad_options_is_a_configuration_error(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["train", "--dataset", str(tmp_path), "--out", str(tmp_path / "m"), "--epochs-head", "0"],
    )
    assert isinstance(result.exception, ConfigurationError)


def test_window_flags_for_a_dataset_that_trains_the_detector_are_refused(
    app: typer.Typer, tmp_path: Path
) -> None:
    dataset = write_flickr_dataset(tmp_path / "set", photos_per_brand=2)
    arguments = ["train", "--dataset", str(dataset), "--out", str(tmp_path / "m")]
    result = CliRunner().invoke(app, [*arguments, "--image-size", "96"])
    assert isinstance(result.exception, ConfigurationError)
    assert "--image-size" in str(result.exception) and "--architecture windows" in str(
        result.exception
    )
    assert not (tmp_path / "m").exists()
