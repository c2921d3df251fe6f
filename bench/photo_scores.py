"""How a detector's photo score is formed from its candidates, compared on validation pictures only.

    python bench/photo_scores.py --model MODEL_DIR [MODEL_DIR ...] [--dataset DIR]

A detector answers a photo with its most probable candidate, when that reaches the threshold.
Photos often show the same brand more than once (a row of cans, a sign and a shirt), so this
script also scores each brand by the noisy-OR of its candidates' probabilities (1 - the product of
1 - p), which rises with every candidate of the brand, and takes the best brand. For each rule it
chooses the threshold on the model's own validation pictures (its validation logo photos and
the logo-free regions training cut from them) exactly as training does, and prints the validation
accuracy, brand accuracy and false-positive rate; the "best candidate" row repeats the numbers in
the model's ``metrics.json``. It also prints how many validation logo photos the best candidate
names right with no threshold at all, and a few thresholds' brand accuracy and false positives:
what the threshold costs against what is lost before it. No test picture is read. Results go to
``bench/results/photo_scores-<model version>.json``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monitor.domain import Detection
from monitor.exceptions import DatasetError, ModelError
from monitor.inference.calibration import choose_threshold
from monitor.inference.classifier import load_classifier
from monitor.inference.datasets import photos_named, read_dataset
from monitor.inference.detection import LogoDetector
from monitor.inference.evaluation import saved_split
from monitor.inference.training.data import analyse_pictures, validation_negatives
from monitor.inference.training.options import TrainOptions
from monitor.inference.unboxed import unboxed_photo_names, with_unboxed_logos

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "flickr_logos_27"
RESULTS = ROOT / "bench" / "results"
MAX_PIXELS = 50_000_000
RULES = ("best candidate", "noisy-OR per brand")
SHOWN_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5)


def photo_answer(detections: Sequence[Detection], rule: str) -> tuple[str | None, float]:
    """The brand a photo is answered with and its score, under ``rule`` (no threshold)."""
    scores: dict[str, float] = {}
    for detection in detections:
        previous = scores.get(detection.brand, 0.0)
        if rule == RULES[0]:
            scores[detection.brand] = max(previous, detection.probability)
        else:
            scores[detection.brand] = 1.0 - (1.0 - previous) * (1.0 - detection.probability)
    if not scores:
        return None, 0.0
    brand = max(scores, key=lambda name: scores[name])
    return brand, scores[brand]


def measure(model_dir: Path, dataset_dir: Path) -> dict[str, Any]:
    """Both rules' validation numbers for one trained detector."""
    try:
        detector = load_classifier(model_dir, runtime="keras")
    except ModelError as exc:
        raise SystemExit(str(exc)) from exc
    if not isinstance(detector, LogoDetector):
        raise SystemExit(f"{model_dir} is not a detector model")
    dataset = with_unboxed_logos(read_dataset(dataset_dir), unboxed_photo_names(dataset_dir))
    try:
        split = saved_split(dataset, model_dir)
    except DatasetError as exc:
        raise SystemExit(str(exc)) from exc
    if split is None:
        raise SystemExit(f"{model_dir} has no split of {dataset_dir}: it was not trained on it")
    validation = photos_named(dataset, split.validation)
    logo_photos = [photo for photo in validation if photo.has_logo]
    negatives = validation_negatives(validation, seed=split.seed)
    logo_found = analyse_pictures(
        detector, [(photo, None) for photo in logo_photos], max_pixels=MAX_PIXELS
    )
    negative_found = analyse_pictures(detector, negatives, max_pixels=MAX_PIXELS)
    options = TrainOptions()
    result: dict[str, Any] = {
        "model_version": detector.metadata.version,
        "validation_logo_photos": len(logo_photos),
        "validation_no_logo_pictures": len(negatives),
        "rules": {},
    }
    for rule in RULES:
        answers = [photo_answer(found.detections, rule) for found in logo_found]
        logo_scores = [score for _, score in answers]
        logo_right = [
            brand in photo.brands for photo, (brand, _) in zip(logo_photos, answers, strict=True)
        ]
        negative_scores = [photo_answer(found.detections, rule)[1] for found in negative_found]
        choice = choose_threshold(
            logo_scores=logo_scores,
            logo_correct=logo_right,
            no_logo_scores=negative_scores,
            max_false_positive_rate=options.max_false_positive_rate,
            confidence=options.false_positive_confidence,
        )
        scores, right = np.asarray(logo_scores), np.asarray(logo_right, dtype=bool)
        negative_array = np.asarray(negative_scores)
        result["rules"][rule] = {
            "threshold": round(choice.threshold, 6),
            "accuracy": round(choice.accuracy, 4),
            "brand_accuracy": round(choice.brand_accuracy, 4),
            "false_positive_rate": round(choice.false_positive_rate, 4),
            "brand_right_without_threshold": int(right.sum()),
            "at_thresholds": {
                str(value): {
                    "brand_accuracy": round(float((right & (scores >= value)).mean()), 4),
                    "false_positive_rate": round(float((negative_array >= value).mean()), 4),
                }
                for value in SHOWN_THRESHOLDS
            },
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, nargs="+", required=True)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for model_dir in args.model:
        result = measure(model_dir, args.dataset)
        print(
            f"{model_dir}: {result['validation_logo_photos']} validation logo photos, "
            f"{result['validation_no_logo_pictures']} logo-free pictures"
        )
        for rule, numbers in result["rules"].items():
            print(
                f"  {rule}: threshold {numbers['threshold']:.4f}, accuracy "
                f"{numbers['accuracy']:.4f}, brand accuracy {numbers['brand_accuracy']:.4f}, "
                f"false positives {numbers['false_positive_rate']:.4f}; brand right with no "
                f"threshold {numbers['brand_right_without_threshold']}"
            )
        path = RESULTS / f"photo_scores-{result['model_version']}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"  results: {path}")


if __name__ == "__main__":
    main()
