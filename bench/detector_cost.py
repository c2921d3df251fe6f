"""Cost of the one-pass detector in single-pass units, side by side with a whole-photo pass.

    python bench/detector_cost.py --detector MODEL_DIR [--windows MODEL_DIR] [--litert]
        [--photos DIR] [--count 64] [--rounds 3] [--batch 16]

A *single-pass unit* is one plain whole-photo MobileNetV2 pass: the photo resized to 224 x 224
and run through the ImageNet MobileNetV2 with average pooling (what the window model does for its
whole-photo window). In the same process, round by round so other load on the machine weighs on
all alike, the bench times on the same decoded photos:

* ``whole photo``: that plain pass (the unit);
* ``detector``: the detector's ``classify`` (letterbox, one pass, peaks, boxes);
* ``detector int8`` with ``--litert``: the same detector through its LiteRT int8 file;
* ``windows`` with ``--windows``: the window model's ``classify`` with its own grids.

Each way's cost in units is the whole-photo rate divided by its rate (best round of each). The
result is printed and written to ``bench/results/detector_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL.Image import Image

from monitor.inference.classifier import load_classifier
from monitor.inference.datasets import list_images
from monitor.inference.pixels import open_image, window_pixels

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ROOT.parent / "shared" / "datasets" / "flickr_logos_27" / "images"
RESULTS = ROOT / "bench" / "results"


def whole_photo_pass(weights: str) -> Callable[[Sequence[Image]], Any]:
    """The unit: photos resized to 224, MobileNetV2 (ImageNet), average pooling, one batch."""
    from monitor.inference._tensorflow import import_tensorflow

    tensorflow = import_tensorflow()
    import keras

    backbone = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), include_top=False, weights=weights, pooling="avg"
    )

    @tensorflow.function(reduce_retracing=True)
    def infer(pixels: Any) -> Any:
        return backbone(pixels / 127.5 - 1.0, training=False)

    def run(photos: Sequence[Image]) -> Any:
        batch = np.stack([window_pixels(photo, (0, 0, *photo.size), 224) for photo in photos])
        return np.asarray(infer(tensorflow.constant(batch, dtype=tensorflow.float32)))

    return run


def photos_per_second(
    run: Callable[[Sequence[Image]], Any], photos: Sequence[Image], batch: int
) -> float:
    """Run every photo, ``batch`` photos a call, and return photos per second."""
    started = time.perf_counter()
    for start in range(0, len(photos), batch):
        run(photos[start : start + batch])
    return len(photos) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--detector", type=Path, required=True)
    parser.add_argument("--windows", type=Path, help="a window model directory to time beside")
    parser.add_argument("--litert", action="store_true", help="also time the int8 LiteRT file")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16, help="photos per call")
    parser.add_argument("--weights", default="imagenet", help="MobileNetV2 weights of the unit")
    arguments = parser.parse_args()

    photos = [open_image(path) for path in list_images(arguments.photos)[: arguments.count]]
    ways: dict[str, Callable[[Sequence[Image]], Any]] = {
        "whole photo": whole_photo_pass(arguments.weights)
    }
    detector = load_classifier(arguments.detector, runtime="keras")
    ways["detector"] = detector.classify
    if arguments.litert:
        from monitor.inference.classifier import load_classifier as load

        ways["detector int8"] = load(arguments.detector, runtime="litert").classify
    if arguments.windows is not None:
        ways["windows"] = load_classifier(arguments.windows).classify
    for run in ways.values():
        run(photos[:2])  # compile every path before timing
    rounds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(arguments.rounds):
        for name, run in ways.items():
            rounds[name].append(photos_per_second(run, photos, arguments.batch))
    best = {name: max(values) for name, values in rounds.items()}
    unit = best["whole photo"]
    result = {
        "detector_version": detector.version,
        "detector_input_size": detector.metadata.input_size,
        "photos": len(photos),
        "batch_photos": arguments.batch,
        "photos_per_second": {name: round(value, 2) for name, value in best.items()},
        "single_pass_units": {name: round(unit / value, 2) for name, value in best.items()},
        "rounds": {name: [round(value, 2) for value in values] for name, values in rounds.items()},
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "detector_cost.json").write_text(json.dumps(result, indent=2) + "\n")
    for name, value in best.items():
        print(f"{name:>14}: {value:7.2f} photos/s  {unit / value:5.2f} single-pass units")


if __name__ == "__main__":
    main()
