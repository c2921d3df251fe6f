"""Photos per second of the multi-scale classifier against one whole-photo pass, side by side.

    python bench/inference_cost.py --model MODEL_DIR [--photos DIR] [--count 64] [--rounds 3]

Both ways run the same model on the same photos in the same process, alternating round by round
so that other load on the machine weighs on both alike. Photos default to the FlickrLogos-27 set
in ``../shared``. The result is printed and written to ``bench/results/inference_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path

from PIL.Image import Image

from monitor.inference.classifier import LogoClassifier, load_classifier
from monitor.inference.datasets import list_images
from monitor.inference.pixels import open_image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ROOT.parent / "shared" / "datasets" / "flickr_logos_27" / "images"
RESULTS = ROOT / "bench" / "results"


def photos_per_second(
    classifier: LogoClassifier, photos: Sequence[Image], grids: Sequence[int] | None, batch: int
) -> float:
    """Classify every photo, ``batch`` photos per call, and return photos per second."""
    started = time.perf_counter()
    for start in range(0, len(photos), batch):
        classifier.classify(photos[start : start + batch], grids=grids)
    return len(photos) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16, help="photos per classify() call")
    arguments = parser.parse_args()

    classifier = load_classifier(arguments.model)
    paths = list_images(arguments.photos)[: arguments.count]
    photos = [open_image(path) for path in paths]
    multi_grids = classifier.metadata.inference.grids
    classifier.classify(photos[:2])  # compile both paths before timing
    classifier.classify(photos[:2], grids=(1,))
    single: list[float] = []
    multi: list[float] = []
    for _ in range(arguments.rounds):
        single.append(photos_per_second(classifier, photos, (1,), arguments.batch))
        multi.append(photos_per_second(classifier, photos, None, arguments.batch))
    best_single, best_multi = max(single), max(multi)
    result = {
        "model_version": classifier.version,
        "photos": len(photos),
        "batch_photos": arguments.batch,
        "grids": list(multi_grids),
        "single_pass_photos_per_second": round(best_single, 2),
        "multi_scale_photos_per_second": round(best_multi, 2),
        "cost_ratio": round(best_single / best_multi, 2),
        "rounds": {"single": [round(v, 2) for v in single], "multi": [round(v, 2) for v in multi]},
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "inference_cost.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{len(photos)} photos: whole photo {best_single:.2f}/s, multi-scale grids "
        f"{list(multi_grids)} {best_multi:.2f}/s: multi-scale costs {best_single / best_multi:.2f}x"
    )


if __name__ == "__main__":
    main()
