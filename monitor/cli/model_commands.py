"""``monitor train``, ``monitor evaluate`` and ``monitor classify``: the model, without a database."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from monitor.cli.common import console, error_console, settings
from monitor.exceptions import ConfigurationError, ImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}


def train(
    dataset: Annotated[Path, typer.Option(help="Folder-per-brand, or annotations.txt + images/.")],
    out: Annotated[Path, typer.Option(help="New model directory to write.")],
    epochs_head: Annotated[int | None, typer.Option(help="Epochs training the head.")] = None,
    epochs_finetune: Annotated[
        int | None, typer.Option(help="Epochs fine-tuning the top of the backbone.")
    ] = None,
    image_size: Annotated[int | None, typer.Option(help="Input side in pixels.")] = None,
    negatives: Annotated[
        Path | None, typer.Option(help="Folder of logo-free photos to learn 'no logo' from.")
    ] = None,
    weights: Annotated[
        str | None, typer.Option(help="'imagenet' or a path to the MobileNetV2 .h5 weights.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split and the sampling.")] = 0,
) -> None:
    """Transfer learning on the ImageNet MobileNetV2 backbone; writes a versioned model directory."""
    from monitor.inference.training import TrainingProgress, TrainOptions, train_model

    chosen: dict[str, Any] = {
        "epochs_head": epochs_head,
        "epochs_finetune": epochs_finetune,
        "image_size": image_size,
    }
    options = TrainOptions(
        **{key: value for key, value in chosen.items() if value is not None},
        backbone_weights=weights or settings().backbone_weights,
        negatives_dir=negatives,
        seed=seed,
    )
    with training_progress() as progress:
        task = progress.add_task("starting", total=None, detail="")

        def show(step: TrainingProgress) -> None:
            epoch = f" epoch {step.epoch}/{step.epochs}" if step.epoch else ""
            loss = step.metrics.get("loss")
            detail = f"loss {loss:.3f}" if loss is not None else step.message
            progress.update(
                task,
                description=f"{step.stage}{epoch}",
                completed=step.completed,
                total=step.total or None,
                detail=detail,
            )

        info = train_model(dataset_dir=dataset, out_dir=out, options=options, progress=show)
    console.print(
        f"model {info.version} written to {info.model_dir} in {info.training_seconds / 60:.1f} min; "
        f"labels: {', '.join(info.labels)}"
    )
    for key, value in sorted(info.metrics.get("validation", {}).items()):
        if isinstance(value, int | float):
            console.print(f"  validation {key}: {value:.4f}")


def training_progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
    )


def classify(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders of images.")],
    model: Annotated[
        Path | None, typer.Option(help="Model directory (default: the configured model).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per image per line.")
    ] = False,
) -> None:
    """Classify image files without any database; exits non-zero if an image could not be read."""
    from PIL import Image as PILImage

    from monitor.images import decode_image
    from monitor.inference.classifier import load_classifier

    classifier = load_classifier(model or settings().default_model_dir)
    failures = 0
    for path in _image_files(paths):
        try:
            picture: PILImage.Image = decode_image(
                _read(path), max_pixels=settings().max_image_pixels
            )
        except ImageError as exc:
            failures += 1
            _print_failure(path, str(exc), as_json=as_json)
            continue
        detections = classifier.classify([picture])[0]
        _print_result(path, detections, as_json=as_json)
    if failures:
        raise typer.Exit(1)


def _image_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        elif path.exists():
            yield path
        else:
            raise ConfigurationError(f"no such file or folder: {path}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror}") from exc


def _print_result(path: Path, detections: list[Any], *, as_json: bool) -> None:
    best = detections[0] if detections else None
    if as_json:
        record = {
            "path": str(path),
            "brand": best.brand if best else None,
            "probability": round(best.probability, 4) if best else None,
            "box": list(best.box) if best and best.box else None,
            "detections": [
                {
                    "brand": d.brand,
                    "probability": round(d.probability, 4),
                    "box": list(d.box) if d.box else None,
                }
                for d in detections
            ],
        }
        sys.stdout.write(json.dumps(record) + "\n")
        return
    if best is None:
        console.print(f"{path}: no logo")
        return
    found = ", ".join(f"{d.brand} {d.probability:.2f} at {list(d.box or [])}" for d in detections)
    console.print(f"{path}: {found}")


def _print_failure(path: Path, reason: str, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"path": str(path), "error": reason}) + "\n")
    else:
        error_console.print(f"{path}: [red]error:[/red] {reason}")


def register(app: typer.Typer) -> None:
    """Add the model commands to the main app."""
    app.command()(train)
    app.command()(classify)
