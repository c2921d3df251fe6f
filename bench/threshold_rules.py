"""One trained model evaluated at its threshold and at the one the false-positive rate seen allows.

    python bench/threshold_rules.py --model MODEL_DIR [--dataset DIR] [--runtime keras|litert]

``monitor train`` chooses the no-logo threshold so that the upper confidence limit of the
validation false-positive rate stays within the bound (``false_positive_confidence``), and keeps
in ``metrics.json`` the threshold the rate seen alone would have allowed (``without_confidence``).
This script evaluates the model on its held-out test photos at both thresholds, the second on a
copy of the model directory that differs only in ``no_logo_threshold``, and prints the two rows
side by side with what validation said of each. Both thresholds were chosen on validation; the
test numbers only tell what the rule costs or saves.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from monitor.inference.evaluation import evaluate_model
from monitor.inference.model_dir import METADATA_FILE, METRICS_FILE

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "flickr_logos_27"
RESULTS = ROOT / "bench" / "results"


def threshold_choices(model_dir: Path) -> dict[str, dict[str, Any]]:
    """The validation threshold reports of both rules, from the model's ``metrics.json``."""
    try:
        chosen = json.loads((model_dir / METRICS_FILE).read_text())["calibration"]["threshold"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"{model_dir}: no threshold report in {METRICS_FILE} ({exc!r})") from exc
    if "without_confidence" not in chosen:
        raise SystemExit(
            f"{model_dir}: its threshold was chosen on the rate seen alone; nothing to compare"
        )
    return {"upper limit": chosen, "rate seen": chosen["without_confidence"]}


def with_threshold(model_dir: Path, threshold: float, into: Path) -> Path:
    """A copy of ``model_dir`` whose metadata names ``threshold``."""
    copy = into / f"{model_dir.name}-{threshold:.6f}"
    shutil.copytree(model_dir, copy)
    metadata = json.loads((copy / METADATA_FILE).read_text())
    metadata["no_logo_threshold"] = threshold
    (copy / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--runtime", default="keras", choices=("keras", "litert"))
    arguments = parser.parse_args()
    choices = threshold_choices(arguments.model)
    rows: dict[str, dict[str, Any]] = {}
    reports: dict[float, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for rule, choice in choices.items():
            threshold = float(choice["value"])
            if threshold not in reports:  # both rules often keep the same threshold
                model_dir = with_threshold(arguments.model, threshold, Path(scratch))
                reports[threshold] = evaluate_model(
                    model_dir=model_dir, dataset_dir=arguments.dataset, runtime=arguments.runtime
                )
            report = reports[threshold]
            rows[rule] = {
                "threshold": choice["value"],
                "validation": {
                    "accuracy": choice["validation_accuracy"],
                    "brand_accuracy": choice["validation_brand_accuracy"],
                    "no_logo_false_positive_rate": choice["validation_false_positive_rate"],
                },
                "test": {
                    "accuracy": report.accuracy,
                    "brand_accuracy": report.brand_accuracy,
                    "no_logo_false_positive_rate": report.no_logo_false_positive_rate,
                    "box_iou50_share": report.box_iou50_share,
                },
            }
    print(f"{'rule':<12} {'threshold':>9}   validation acc / brand / FP   test acc / brand / FP")
    for rule, row in rows.items():
        validation, test = row["validation"], row["test"]
        print(
            f"{rule:<12} {row['threshold']:>9.4f}   "
            f"{validation['accuracy']:.3f} / {validation['brand_accuracy']:.3f} / "
            f"{validation['no_logo_false_positive_rate']:.3f}        "
            f"{test['accuracy']:.3f} / {test['brand_accuracy']:.3f} / "
            f"{test['no_logo_false_positive_rate']:.3f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"threshold_rules-{arguments.model.name}-{arguments.runtime}.json"
    (RESULTS / name).write_text(json.dumps(rows, indent=2) + "\n")
    print(f"results: {RESULTS / name}")


if __name__ == "__main__":
    main()
