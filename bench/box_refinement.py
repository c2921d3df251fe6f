"""How far the second look's boxes improve on the detector's, on one trained detector.

    python bench/box_refinement.py --model MODEL_DIR [--dataset DIR]

The second look's window classifier also boxes the logo inside its window. Training fits the
weight of that box against the detector's (``verifier.box_refinement`` in ``metadata.json``) on
validation logos; this script fits it again on the model's validation photos, whatever weight the
model holds, and reads the share of logos boxed with IoU >= 0.5 on validation and test at every
weight tried, each logo paired with the most probable looked-at candidate on it, as training
pairs them. The weight is chosen on validation; the test row only reports it. Printed and written
to ``bench/results/box_refinement-<model version>.json``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

from monitor.exceptions import DatasetError, ModelError
from monitor.inference.classifier import load_classifier
from monitor.inference.datasets import photos_named, read_dataset
from monitor.inference.detection import LogoDetector
from monitor.inference.evaluation import saved_split
from monitor.inference.training.data import analyse_pictures
from monitor.inference.training.detector_run import refinement_pairs
from monitor.inference.verification import BOX_REFINEMENT_STEPS, fit_box_refinement

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "flickr_logos_27"
RESULTS = ROOT / "bench" / "results"
MAX_PIXELS = 50_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    args = parser.parse_args()
    try:
        detector = load_classifier(args.model, runtime="keras")
    except ModelError as exc:
        raise SystemExit(str(exc)) from exc
    if not isinstance(detector, LogoDetector) or detector.metadata.verifier is None:
        raise SystemExit(f"{args.model} is not a detector with a second look")
    # the detector's own boxes in every candidate, whatever weight the model was saved with
    settings = replace(detector.metadata.verifier, box_refinement=0.0)
    detector.metadata = replace(detector.metadata, verifier=settings)
    dataset = read_dataset(args.dataset)
    try:
        split = saved_split(dataset, args.model)
    except DatasetError as exc:
        raise SystemExit(str(exc)) from exc
    if split is None:
        raise SystemExit(f"{args.model} has no split of {args.dataset}: it was not trained on it")
    sides = {}
    for side in ("validation", "test"):
        photos = [photo for photo in photos_named(dataset, getattr(split, side)) if photo.has_logo]
        found = analyse_pictures(
            detector, [(photo, None) for photo in photos], max_pixels=MAX_PIXELS
        )
        sides[side] = refinement_pairs(photos, found)
    choice = fit_box_refinement(sides["validation"])
    result = {
        "model": str(args.model),
        "version": detector.version,
        "saved_weight": detector.metadata.verifier.box_refinement,
        "validation_choice": asdict(choice),
        "by_weight": {
            side: {
                str(weight): asdict(fit_box_refinement(pairs, weights=(weight,)))
                for weight in BOX_REFINEMENT_STEPS
            }
            for side, pairs in sides.items()
        },
    }
    for side in sides:
        row = result["by_weight"][side]
        print(
            f"{side}: {len(sides[side])} logos; IoU >= 0.5 share at weight 0 "
            f"{row['0.0']['iou50_share']}, at {choice.weight} {row[str(choice.weight)]['iou50_share']}"
            f", at 1 {row['1.0']['iou50_share']}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"box_refinement-{detector.version}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
