"""Where a detector's logo photos go wrong: not found, found but misnamed, or below the threshold.

    python bench/detector_misses.py --model MODEL_DIR [--side validation|test] [--dataset DIR]

For each photo with a logo on one side of the model's own split (validation by default: the side
recipe choices may be made on), it reads the model's answer at its threshold and the detector's own
candidates without the second look, and puts the photo in one class:

* ``right``: the brand named at the threshold is one the photo shows;
* ``right brand, below the threshold``: the best candidate names it, too weakly;
* ``logo not among the looked-at candidates``: no candidate the second look sees (the best
  ``verifier.candidates``) boxes a logo with IoU >= 0.3; ``rank_iou30`` says where the first such
  candidate is, if any;
* ``logo looked at, another answer won``: a looked-at candidate is on the logo, but the answer
  is another brand (named wrong, or another candidate scored higher).

Also the rank among the detector's own candidates (parts of a more probable logo dropped, as
serving without a second look drops them) of the first one on a logo with IoU >= 0.5 and 0.3,
which says whether looking at more candidates could help; and how many photos were answered right
by the largest logo's share of the photo's area (``by_logo_size``). Printed and written to
``bench/results/detector_misses-<model version>-<side>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from monitor.domain import Box
from monitor.exceptions import DatasetError, ModelError
from monitor.inference.classifier import load_classifier
from monitor.inference.datasets import LabeledPhoto, photos_named, read_dataset
from monitor.inference.detection import LogoDetector, PhotoCandidates, at_threshold
from monitor.inference.evaluation import saved_split
from monitor.inference.training.data import analyse_pictures
from monitor.inference.windows import box_area, iou

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "flickr_logos_27"
RESULTS = ROOT / "bench" / "results"
MAX_PIXELS = 50_000_000
SIZE_BINS = (
    (0.01, "under 1%"),
    (0.05, "1-5%"),
    (0.2, "5-20%"),
    (0.5, "20-50%"),
    (math.inf, "50% and over"),
)
"""The logo-size classes: the upper bound of each (share of the photo's area) and its name."""


def size_class(photo: LabeledPhoto) -> str:
    """The size class of the photo's largest logo, by its share of the photo's area."""
    area = max(box_area(logo.box) for logo in photo.logo_boxes())
    share = area / max(1, photo.size[0] * photo.size[1])
    return next(name for bound, name in SIZE_BINS if share < bound)


def first_rank_on_logo(candidates: PhotoCandidates, logos: list[Box], overlap: float) -> int | None:
    """The rank of the first candidate boxing a logo with IoU >= ``overlap`` (None: none does)."""
    for rank, detection in enumerate(candidates.detections):
        if detection.box is not None and any(iou(detection.box, box) >= overlap for box in logos):
            return rank
    return None


def classify_photo(
    photo: LabeledPhoto, answer: str | None, best_brand: str | None, rank30: int | None, looked: int
) -> str:
    """The photo's class (see the module docstring)."""
    if answer is not None and answer in photo.brands:
        return "right"
    if best_brand is not None and best_brand in photo.brands:
        return "right brand, below the threshold"
    if rank30 is None or rank30 >= looked:
        return "logo not among the looked-at candidates"
    return "logo looked at, another answer won"


def analyse(detector: LogoDetector, photos: list[LabeledPhoto]) -> list[PhotoCandidates]:
    """Every candidate of each whole photo, as serving finds them."""
    return analyse_pictures(detector, [(photo, None) for photo in photos], max_pixels=MAX_PIXELS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--side", choices=("validation", "test"), default="validation")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    args = parser.parse_args()

    try:
        detector = load_classifier(args.model, runtime="keras")
    except ModelError as exc:
        raise SystemExit(str(exc)) from exc
    if not isinstance(detector, LogoDetector):
        raise SystemExit(f"{args.model} is not a detector model")
    dataset = read_dataset(args.dataset)
    try:
        split = saved_split(dataset, args.model)
    except DatasetError as exc:
        raise SystemExit(str(exc)) from exc
    if split is None:
        raise SystemExit(f"{args.model} has no split of {args.dataset}: it was not trained on it")
    photos = [photo for photo in photos_named(dataset, getattr(split, args.side)) if photo.has_logo]
    answered = analyse(detector, photos)
    own = analyse(detector.without_second_look(), photos)
    looked = detector.metadata.verifier.candidates if detector.metadata.verifier else 1

    classes: Counter[str] = Counter()
    sizes: dict[str, Counter[str]] = {name: Counter() for _, name in SIZE_BINS}
    ranks: dict[str, Counter[str]] = {"iou50": Counter(), "iou30": Counter()}
    rows: list[dict[str, Any]] = []
    for photo, final, candidates in zip(photos, answered, own, strict=True):
        logos = [logo.box for logo in photo.logo_boxes()]
        rank50 = first_rank_on_logo(candidates, logos, 0.5)
        rank30 = first_rank_on_logo(candidates, logos, 0.3)
        at = at_threshold(final.detections, detector.metadata)
        answer = at[0].brand if at else None
        best = final.detections[0].brand if final.detections else None
        kind = classify_photo(photo, answer, best, rank30, looked)
        classes[kind] += 1
        size = size_class(photo)
        sizes[size]["photos"] += 1
        sizes[size]["right"] += kind == "right"
        for name, rank in (("iou50", rank50), ("iou30", rank30)):
            ranks[name]["none" if rank is None else str(rank) if rank < 5 else "5+"] += 1
        rows.append(
            {
                "photo": photo.name,
                "brands": sorted(photo.brands),
                "class": kind,
                "answer": answer,
                "best_candidates": [
                    (detection.brand, round(detection.probability, 4))
                    for detection in final.detections[:3]
                ],
                "rank_iou50": rank50,
                "rank_iou30": rank30,
            }
        )
    result = {
        "model": str(args.model),
        "version": detector.version,
        "side": args.side,
        "logo_photos": len(photos),
        "looked_at_candidates": looked,
        "classes": dict(classes.most_common()),
        "first_candidate_on_a_logo": {
            name: dict(sorted(counter.items())) for name, counter in ranks.items()
        },
        "by_logo_size": {name: dict(counter) for name, counter in sizes.items()},
        "photos": rows,
    }
    print(f"{args.side}: {len(photos)} logo photos, {looked} candidates looked at again")
    for kind, count in classes.most_common():
        print(f"  {count:4d}  {kind}")
    for name, counter in ranks.items():
        print(f"  first candidate on a logo ({name}), by rank: {dict(sorted(counter.items()))}")
    shown = ", ".join(f"{name} {c['right']}/{c['photos']}" for name, c in sizes.items() if c)
    print(f"  right by the largest logo's share of the photo: {shown}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"detector_misses-{detector.version}-{args.side}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"results: {path}")


if __name__ == "__main__":
    main()
