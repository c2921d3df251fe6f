"""The full training on FlickrLogos-27, timed, then its evaluation on the held-out test photos.

    python bench/train_flickr.py [--out MODEL_DIR] [--dataset DIR] [--set OPTION=VALUE ...]

Equivalent to::

    monitor train --dataset ../shared/datasets/flickr_logos_27 --out MODEL_DIR
    monitor evaluate --model MODEL_DIR --dataset ../shared/datasets/flickr_logos_27 --json

The float model is evaluated, and a detector's int8 LiteRT file too when training wrote one. The
numbers (training time, accuracy, brand accuracy, no-logo false positives, ...) are printed and
written to ``bench/results/train_flickr-<model version>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from monitor.inference.evaluation import evaluate_model
from monitor.inference.model_dir import LITERT_FILE
from monitor.inference.training import TrainingProgress, TrainOptions, train_model

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "flickr_logos_27"
RESULTS = ROOT / "bench" / "results"
GOALS = {
    "accuracy": 0.93,
    "brand_accuracy": 0.90,
    "no_logo_false_positive_rate": 0.03,
    "box_iou50_share": 0.70,
}


def print_epochs(step: TrainingProgress) -> None:
    """One line per finished epoch or stage, so the log shows where the time goes."""
    if step.completed == step.total and (step.epoch or step.stage not in ("features", "reading")):
        epoch = f" epoch {step.epoch}/{step.epochs}" if step.epoch else ""
        metrics = " ".join(f"{name} {value:.3f}" for name, value in step.metrics.items())
        print(
            f"{time.strftime('%H:%M:%S')} {step.stage}{epoch} {metrics} {step.message}", flush=True
        )


def parse_override(text: str) -> tuple[str, object]:
    """``name=value`` as a TrainOptions field and a value of that field's type."""
    name, _, value = text.partition("=")
    if name not in TrainOptions.__dataclass_fields__ or not value:
        raise SystemExit(f"--set {text!r}: expected OPTION=VALUE with a TrainOptions field")
    current = getattr(TrainOptions(), name)
    if isinstance(current, bool):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise SystemExit(f"--set {text!r}: expected true or false")
        return name, value.lower() in ("true", "1", "yes")
    if current is None:  # an optional number (None: its default)
        current = 0 if value.isdigit() else 0.0
    try:
        return name, type(current)(value) if isinstance(current, int | float) else value
    except ValueError as exc:
        raise SystemExit(f"--set {text!r}: {exc}") from exc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "models" / time.strftime("flickr-%Y%m%d-%H%M%S")
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="OPTION=VALUE",
        help="override a TrainOptions field (an integer, a number or a word), for experiments",
    )
    arguments = parser.parse_args()
    options = replace(TrainOptions(), **dict(parse_override(text) for text in arguments.set))

    started = time.monotonic()
    info = train_model(
        dataset_dir=arguments.dataset,
        out_dir=arguments.out,
        options=options,
        progress=print_epochs,
    )
    training_minutes = (time.monotonic() - started) / 60
    report = evaluate_model(
        model_dir=info.model_dir, dataset_dir=arguments.dataset, runtime="keras"
    )
    int8_report = (
        evaluate_model(model_dir=info.model_dir, dataset_dir=arguments.dataset, runtime="litert")
        if (info.model_dir / LITERT_FILE).is_file()
        else None
    )
    result = {
        "model_dir": str(info.model_dir),
        "model_version": info.version,
        "training_minutes": round(training_minutes, 1),
        "training_timings_seconds": info.metrics["timings_seconds"],
        "validation": info.metrics["calibration"],
        "test": report.to_dict(),
        "test_int8": int8_report.to_dict() if int8_report is not None else None,
        "goals": {
            name: {"goal": goal, "measured": getattr(report, name)} for name, goal in GOALS.items()
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"train_flickr-{info.version}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"trained in {training_minutes:.1f} min; model {info.version} in {info.model_dir}")
    for name, value in (
        ("accuracy (brand or no logo)", report.accuracy),
        ("brand accuracy on logo photos", report.brand_accuracy),
        ("no-logo pictures given a brand", report.no_logo_false_positive_rate),
        ("found logos with box IoU >= 0.5", report.box_iou50_share),
        ("detection mAP@0.5", report.map50),
        ("calibration error (ECE)", report.ece),
        ("detection calibration error", report.detection_ece),
    ):
        print(f"  {name}: {'n/a' if value is None else f'{value:.4f}'}")
    print(f"results: {path}")


if __name__ == "__main__":
    main()
