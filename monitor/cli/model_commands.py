"""``monitor train``, ``monitor evaluate`` and ``monitor classify``: the model, without a database.

The commands only parse flags, show progress and print results; the work is in
``monitor.inference``, imported inside each command so that other commands start without
TensorFlow.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from monitor.cli.common import console, error_console, settings
from monitor.domain import Detection
from monitor.exceptions import ConfigurationError, ImageError

if TYPE_CHECKING:
    from PIL.Image import Image
    from rich.progress import Progress

    from monitor.cli.progress import PlainProgress
    from monitor.inference.evaluation import EvaluationReport
    from monitor.inference.training import ModelInfo, TrainingProgress, TrainOptions

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"})


# --- train ---------------------------------------------------------------------------------------


def train(
    dataset: Annotated[
        Path, typer.Option(help="Folder per brand, or FlickrLogos-style annotations.txt + images/.")
    ],
    out: Annotated[Path, typer.Option(help="New model directory to write (absent or empty).")],
    epochs_head: Annotated[int | None, typer.Option(help="Epochs fitting the head.")] = None,
    epochs_finetune: Annotated[
        int | None, typer.Option(help="Epochs fine-tuning the top of the backbone (0: none).")
    ] = None,
    image_size: Annotated[int | None, typer.Option(help="Model input side in pixels.")] = None,
    negatives: Annotated[
        Path | None, typer.Option(help="Folder of logo-free photos to learn 'no logo' from.")
    ] = None,
    no_logo_folder: Annotated[
        str | None, typer.Option(help="Name of the dataset's folder of logo-free photos.")
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(help="'imagenet' or the MobileNetV2 .h5 weights (default: configured)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split and the sampling.")] = 0,
    architecture: Annotated[
        str,
        typer.Option(
            help="'auto' (the default): the one-pass detector for a dataset with logo boxes, "
            "the window classifier for a folder per brand; 'detector': the one-pass detector "
            "(photos of a folder per brand stand whole for their logo); 'windows': the "
            "classifier on a photo's windows."
        ),
    ] = "auto",
) -> None:
    """Train a logo model (MobileNetV2 transfer learning) into a new model directory."""
    from monitor.inference.training import TrainOptions, train_model

    chosen: dict[str, Any] = {
        "epochs_head": epochs_head,
        "epochs_finetune": epochs_finetune,
        "image_size": image_size,
    }
    options = TrainOptions(
        **{key: value for key, value in chosen.items() if value is not None},
        backbone_weights=weights or settings().backbone_weights,
        negatives_dir=negatives,
        no_logo_folder=no_logo_folder,
        seed=seed,
        architecture=architecture,
    )
    _refuse_window_flags_for_a_detector(dataset, options, chosen)
    with training_progress() as progress:
        task = progress.add_task("starting", total=None, detail="")

        def show(step: TrainingProgress) -> None:
            if step.warning:
                # the live bar, when there is one, draws on this same console and stays intact
                error_console.print(
                    f"[yellow]warning:[/yellow] {step.warning}", highlight=False, soft_wrap=True
                )
                return
            progress.update(
                task,
                description=_stage_title(step),
                completed=step.completed,
                total=step.total or None,
                detail=_stage_detail(step),
            )

        info = train_model(dataset_dir=dataset, out_dir=out, options=options, progress=show)
    _print_training_summary(info)


def _refuse_window_flags_for_a_detector(
    dataset: Path, options: TrainOptions, chosen: dict[str, Any]
) -> None:
    """Refuse the window classifier's flags where the detector would be trained without them."""
    from monitor.inference.datasets import detect_layout
    from monitor.inference.training import resolved_architecture

    given = [f"--{name.replace('_', '-')}" for name, value in chosen.items() if value is not None]
    if not given or options.architecture == "windows":
        return
    if (
        resolved_architecture(options, dataset_layout=detect_layout(dataset)).architecture
        != "detector"
    ):
        return
    raise ConfigurationError(
        f"{', '.join(given)} set the window classifier's training, but the one-pass detector is "
        "trained here (the default for a dataset with logo boxes); add --architecture windows "
        "to train the window classifier with them"
    )


def training_progress() -> Progress | PlainProgress:
    """The progress display: stage and epoch, bar, batches, loss, elapsed time.

    On standard error, so that standard output holds only results (``evaluate --json > f``); a
    live bar on a terminal, plain lines otherwise (see ``monitor.cli.progress``).
    """
    from monitor.cli.progress import progress_display

    return progress_display(error_console)


def _stage_title(step: TrainingProgress) -> str:
    return f"{step.stage} {step.epoch}/{step.epochs}" if step.epoch else step.stage


def _stage_detail(step: TrainingProgress) -> str:
    if "heatmap_loss" in step.metrics:
        return "  ".join(
            f"{name.replace('_', ' ')} {value:.3f}" for name, value in step.metrics.items()
        )
    loss = step.metrics.get("loss")
    accuracy = step.metrics.get("accuracy")
    if loss is None:
        return step.message
    return (
        f"loss {loss:.3f} accuracy {accuracy:.3f}" if accuracy is not None else f"loss {loss:.3f}"
    )


def _print_training_summary(info: ModelInfo) -> None:
    console.print(
        f"model {info.version} written to {info.model_dir} in "
        f"{info.training_seconds / 60:.1f} min; labels: {', '.join(info.labels)}"
    )
    calibration = info.metrics.get("calibration", {})
    threshold = calibration.get("threshold", {})
    if not info.knows_no_logo:
        console.print(
            "  no 'no logo' answer (no logo-free pictures): every photo gets its most probable class"
        )
    for name, value in (
        ("no-logo threshold", threshold.get("value") if info.knows_no_logo else None),
        ("temperature", calibration.get("temperature")),
        ("validation accuracy", threshold.get("validation_accuracy")),
        ("validation brand accuracy", threshold.get("validation_brand_accuracy")),
        ("validation no-logo given a brand", threshold.get("validation_false_positive_rate")),
        ("calibration error (ECE) after", calibration.get("ece_after")),
    ):
        if isinstance(value, int | float):
            console.print(f"  {name}: {value:.4f}")


# --- evaluate ------------------------------------------------------------------------------------


def evaluate(
    dataset: Annotated[Path, typer.Option(help="Dataset folder (either layout).")],
    model: Annotated[
        Path | None, typer.Option(help="Model directory (default: the configured model).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    all_photos: Annotated[
        bool, typer.Option("--all-photos", help="Use every photo, not only the held-out test.")
    ] = False,
    seed: Annotated[
        int | None, typer.Option(help="Split seed for models without this dataset's split.")
    ] = None,
    no_logo_folder: Annotated[
        str | None, typer.Option(help="Name of the dataset's folder of logo-free photos.")
    ] = None,
    confusion_matrix: Annotated[
        Path | None, typer.Option(help="Where to draw the confusion matrix (PNG).")
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option(help="Detector runtime: auto, keras or litert (default: configured)."),
    ] = None,
) -> None:
    """Measure a model on held-out photos: accuracy, per-brand precision/recall, calibration."""
    from monitor.inference.evaluation import evaluate_model

    with training_progress() as progress:
        task = progress.add_task("classifying", total=None, detail="")
        report = evaluate_model(
            model_dir=model or settings().default_model_dir,
            dataset_dir=dataset,
            seed=seed,
            test_only=not all_photos,
            no_logo_folder=no_logo_folder,
            confusion_matrix_path=confusion_matrix,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
            runtime=runtime or settings().model_runtime,
        )
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return
    _print_evaluation(report)


def _print_evaluation(report: EvaluationReport) -> None:
    from rich.table import Table

    console.print(
        f"model {report.model_version} ({report.runtime}) on {report.dataset} "
        f"({report.photos_used}): "
        f"{report.logo_images} logo photos, {report.no_logo_images} logo-free pictures"
    )
    summary = Table(show_header=False, box=None)
    for name, value in (
        ("accuracy (brand or no logo)", report.accuracy),
        ("brand accuracy on logo photos", report.brand_accuracy),
        ("logo-free pictures given a brand", report.no_logo_false_positive_rate),
        ("logo photos answered 'no logo'", report.missed_logo_rate),
        ("found logos with box IoU >= 0.5", report.box_iou50_share),
        ("calibration error (ECE)", report.ece),
        ("detection mAP@0.5", report.map50),
        ("pictures per second", report.images_per_second),
    ):
        summary.add_row(name, "n/a" if value is None else f"{value:.4f}")
    console.print(summary)
    brands = Table("brand", "precision", "recall", "photos")
    for brand, score in report.per_brand.items():
        brands.add_row(brand, f"{score.precision:.2f}", f"{score.recall:.2f}", str(score.support))
    console.print(brands)
    console.print(f"confusion matrix: {report.confusion_matrix_png}")
    for failure in report.failed_images:
        error_console.print(f"[red]error:[/red] {failure}")


# --- classify ------------------------------------------------------------------------------------


def classify(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders of images.")],
    model: Annotated[
        Path | None, typer.Option(help="Model directory (default: the configured model).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per image per line.")
    ] = False,
    runtime: Annotated[
        str | None,
        typer.Option(help="Detector runtime: auto, keras or litert (default: configured)."),
    ] = None,
) -> None:
    """Classify image files without any database; exits non-zero if an image could not be read."""
    from monitor.inference.classifier import load_classifier

    files = list(_image_files(paths))
    classifier = load_classifier(
        model or settings().default_model_dir, runtime=runtime or settings().model_runtime
    )
    knows_no_logo = classifier.metadata.knows_no_logo
    if not knows_no_logo:
        error_console.print(
            f"note: model {classifier.version} was trained without logo-free pictures: it names "
            "its most probable class for every image and never answers 'no logo'",
            highlight=False,
            soft_wrap=True,
        )
    failures = 0
    batch_size = settings().classify_batch_size
    for start in range(0, len(files), batch_size):
        readable: list[tuple[Path, Image]] = []
        for path in files[start : start + batch_size]:
            try:
                readable.append((path, _decode(path)))
            except ImageError as exc:
                failures += 1
                _print_failure(path, str(exc), as_json=as_json)
        results = classifier.classify([picture for _, picture in readable])
        for (path, _), detections in zip(readable, results, strict=True):
            _print_result(path, detections, as_json=as_json, knows_no_logo=knows_no_logo)
    if failures:
        raise typer.Exit(1)


def _image_files(paths: Sequence[Path]) -> Iterator[Path]:
    """The files named, and the image files inside the folders named, in order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                child
                for child in path.rglob("*")
                if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES
            )
        elif path.exists():
            yield path
        else:
            raise ConfigurationError(f"no such file or folder: {path}")


def _decode(path: Path) -> Image:
    """An upright RGB picture from an image file, or ImageError saying why not."""
    from monitor.images import decode_image

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return decode_image(data, max_pixels=settings().max_image_pixels)


def _detection_record(detection: Detection) -> dict[str, Any]:
    return {
        "brand": detection.brand,
        "probability": round(detection.probability, 4),
        "box": list(detection.box) if detection.box else None,
    }


def _print_result(
    path: Path, detections: list[Detection], *, as_json: bool, knows_no_logo: bool
) -> None:
    best = detections[0] if detections else None
    if as_json:
        record = {
            "path": str(path),
            "knows_no_logo": knows_no_logo,
            "brand": best.brand if best else None,
            "probability": round(best.probability, 4) if best else None,
            "box": list(best.box) if best and best.box else None,
            "detections": [_detection_record(detection) for detection in detections],
        }
        sys.stdout.write(json.dumps(record) + "\n")
        return
    if best is None:
        console.print(f"{path}: no logo", soft_wrap=True, highlight=False)
        return
    found = ", ".join(
        f"{detection.brand} {detection.probability:.2f} at {list(detection.box or [])}"
        for detection in detections
    )
    console.print(f"{path}: {found}", soft_wrap=True, highlight=False)


def _print_failure(path: Path, reason: str, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"path": str(path), "error": reason}) + "\n")
    else:
        error_console.print(f"{path}: [red]error:[/red] {reason}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``train``, ``evaluate`` and ``classify`` to the main app."""
    app.command()(train)
    app.command()(evaluate)
    app.command()(classify)
