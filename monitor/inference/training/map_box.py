"""A box read from the window classifier's feature map, fitted after the classifier itself.

The window network's box output reads the pooled features, which keep what a window shows but
not where in it: as the second look's refinement of the detector's box it boxed fewer validation
logos right than the detector (README, "The second look's box"). A two-stage detector's second
stage reads the box from the region's feature map instead. This stage does that on the fitted
second look, without touching what it has learnt: its backbone runs once over the training and
validation windows that show a logo, and a small head (a 1x1 convolution, then a dense layer on
the flattened map) is fitted to their boxes with the same L1 loss. The saved classifier then gives
its logits as before and this head's box (``monitor.inference.network.build_logo_model``), so the
naming and scoring of candidates stay exactly those of the classifier as fitted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from monitor.inference.network import build_map_box_head
from monitor.inference.samples import SampleSpec, render_all
from monitor.inference.training import fitting
from monitor.inference.training.options import TrainingProgress
from monitor.inference.training.run import TrainingRun

EPOCHS = 12
BATCH_SIZE = 64
LEARNING_RATE = 1e-3


def fit_map_box_head(run: TrainingRun) -> dict[str, Any]:
    """Fit a box head on ``run``'s fitted backbone maps and give it to ``run``; a summary.

    The epoch with the lowest validation L1 is kept. The summary holds that loss beside the
    pooled box output's on the same validation windows (the box the classifier had).
    """
    prepared, options = run.prepared, run.options
    train_specs = [spec for spec in prepared.train_specs if spec.has_box]
    validation_specs = [spec for spec in prepared.validation_specs if spec.has_box]
    if not train_specs:
        return {"train_windows": 0, "note": "no windows with a box: the pooled box stays"}
    extract = fitting.extraction_function(run.backbone, options.image_size, pooling=None)
    train_maps = _maps(run, extract, prepared.train_photos, train_specs, "train")
    validation_maps = (
        _maps(run, extract, prepared.validation_photos, validation_specs, "validation")
        if validation_specs
        else None
    )
    head = build_map_box_head(train_maps.shape[1:], seed=options.seed)
    trainer = keras.Model(head.input, head.output, name="map_box_trainer")
    trainer.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=_l1)
    train_boxes = _boxes(train_specs)
    best_loss, best_weights, best_epoch = np.inf, head.get_weights(), 0
    rng = np.random.default_rng([options.seed, 31])
    history: list[float] = []
    for epoch in range(1, EPOCHS + 1):
        order = rng.permutation(len(train_specs))
        trainer.fit(
            train_maps[order].astype(np.float32),
            train_boxes[order],
            batch_size=BATCH_SIZE,
            epochs=1,
            verbose=0,
            shuffle=False,
        )
        if validation_maps is None:
            best_weights, best_epoch = head.get_weights(), epoch
            continue
        loss = _mean_l1(head, validation_maps, _boxes(validation_specs))
        history.append(round(loss, 4))
        run.report(
            TrainingProgress(
                "box", epoch, EPOCHS, epoch=epoch, epochs=EPOCHS, metrics={"val_l1": loss}
            )
        )
        if loss < best_loss:
            best_loss, best_weights, best_epoch = loss, head.get_weights(), epoch
    head.set_weights(best_weights)
    run.box_head = head
    summary: dict[str, Any] = {
        "train_windows": len(train_specs),
        "validation_windows": len(validation_specs),
        "best_epoch": best_epoch,
        "validation_l1": history,
    }
    if validation_maps is not None:
        summary["validation_l1_kept"] = round(best_loss, 4)
        summary["validation_l1_pooled_box"] = round(
            _mean_l1(run.pooled_box_model(), validation_maps, _boxes(validation_specs)), 4
        )
    return summary


def _maps(
    run: TrainingRun,
    extract: Any,
    photos: Sequence[Any],
    specs: Sequence[SampleSpec],
    side: str,
) -> np.ndarray:
    """The fitted backbone's last feature map of every window (float16)."""
    size = run.options.image_size

    def samples() -> Iterator[np.ndarray]:
        return render_all(photos, specs, size, max_pixels=run.options.max_image_pixels)

    def on_batch(done: int, total: int) -> None:
        run.report(TrainingProgress("box", done, total, message=f"{side} maps"))

    return fitting.extract_features(
        extract, samples, count=len(specs), image_size=size, on_batch=on_batch
    )


def _boxes(specs: Sequence[SampleSpec]) -> np.ndarray:
    return np.array([spec.box_fractions for spec in specs], dtype=np.float32).reshape(-1, 4)


def _l1(y_true: Any, y_pred: Any) -> Any:
    """L1 distance of the four corners, summed (the window network's box loss, every row a box)."""
    return keras.ops.sum(keras.ops.abs(y_true - y_pred), axis=-1)


def _mean_l1(model: keras.Model, maps: np.ndarray, boxes: np.ndarray) -> float:
    """The mean summed-corner L1 of ``model``'s boxes on ``maps``."""
    run = tf.function(lambda batch: model(tf.cast(batch, tf.float32), training=False))
    predicted = np.concatenate(
        [np.asarray(run(maps[start : start + 256])) for start in range(0, len(maps), 256)]
    )
    return float(np.mean(np.abs(predicted - boxes).sum(axis=1)))
