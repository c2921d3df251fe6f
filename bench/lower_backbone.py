"""The detector training's frozen lower backbone: TensorFlow against a float32 LiteRT program.

    python bench/lower_backbone.py [--size 352] [--batch 16] [--rounds 7] [--weights imagenet]

Each training step of the detector runs MobileNetV2 up to block 9 on a batch of views, frozen;
training runs it as the float32 LiteRT program on a CPU (``DetectorRun._lower_features``). In
one process, round by round so other load on the machine weighs on both alike, this times one
batch through the TensorFlow function training ran before (the same layers) and through the
LiteRT program, reports the median of each, their ratio and the largest difference between their
features. Printed and written to ``bench/results/lower_backbone.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from monitor.inference.detector import (
    build_feature_extractor,
    build_lower_features_model,
    split_feature_extractor,
)
from monitor.inference.litert import float_program

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=352)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--weights", default="imagenet")
    arguments = parser.parse_args()
    size = arguments.size
    extractor = build_feature_extractor(input_size=size, weights=arguments.weights)
    lower, _ = split_feature_extractor(extractor)
    model = build_lower_features_model(lower=lower, input_size=size)
    tensorflow_run = tf.function(lambda batch: model(batch, training=False))
    clock = time.perf_counter()
    program = float_program(model, input_shape=(size, size, 3))
    conversion = time.perf_counter() - clock
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (arguments.batch, size, size, 3)).astype(np.float32)

    def run_tensorflow() -> dict[str, np.ndarray]:
        outputs = tensorflow_run(tf.constant(batch))
        return {name: np.asarray(value) for name, value in outputs.items()}

    expected, got = run_tensorflow(), program(batch)
    difference = max(float(np.abs(expected[name] - got[name]).max()) for name in expected)
    times: dict[str, list[float]] = {"tensorflow": [], "litert": []}
    for _ in range(arguments.rounds):
        for name, run in (("tensorflow", run_tensorflow), ("litert", lambda: program(batch))):
            clock = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - clock)
    medians = {name: float(np.median(values)) for name, values in times.items()}
    result = {
        "size": size,
        "batch": arguments.batch,
        "rounds": arguments.rounds,
        "median_seconds": {name: round(value, 4) for name, value in medians.items()},
        "litert_over_tensorflow": round(medians["litert"] / medians["tensorflow"], 3),
        "largest_feature_difference": difference,
        "conversion_seconds": round(conversion, 1),
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lower_backbone.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
