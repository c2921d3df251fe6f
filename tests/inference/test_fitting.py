"""Keeping the best epoch and averaging weights during fitting (a small Keras model)."""

from __future__ import annotations

import keras
import numpy as np

from monitor.inference.network import build_head
from monitor.inference.training.fitting import (
    Arrays,
    AverageWeights,
    KeepBestWeights,
    LinearWarmup,
    compile_for_training,
    dataset_of,
    fit_stage,
    head_trainer,
    sample_batches,
)


class _Record(keras.callbacks.Callback):
    """Keep a copy of the weights at the end of every epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.weights: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.weights.append([weight.copy() for weight in self.model.get_weights()])


def _fit(callbacks: list[keras.callbacks.Callback], epochs: int = 4) -> keras.Model:
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(64, 3)).astype("float32")
    targets = inputs @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    model.fit(inputs, targets, epochs=epochs, batch_size=16, verbose=0, callbacks=callbacks)
    return model


def test_average_weights_is_the_mean_of_the_epochs_from_start_on() -> None:
    record = _Record()
    averager = AverageWeights(start=2)
    _fit([record, averager])
    assert averager.count == 3
    averaged = averager.averaged()
    assert averaged is not None
    for index, weight in enumerate(averaged):
        expected = np.mean([epoch[index] for epoch in record.weights[1:]], axis=0)
        np.testing.assert_allclose(weight, expected, rtol=1e-6)


def test_no_average_before_its_start() -> None:
    averager = AverageWeights(start=10)
    _fit([averager], epochs=2)
    assert averager.averaged() is None and averager.count == 0


def test_keep_best_weights_restores_the_epoch_with_the_lowest_value() -> None:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    keeper = KeepBestWeights("val_loss")
    keeper.set_model(model)
    for epoch, value in enumerate([3.0, 1.0, 2.0]):
        model.set_weights([np.full((2, 1), epoch, "float32"), np.full((1,), epoch, "float32")])
        keeper.on_epoch_end(epoch, {"val_loss": value})
    keeper.on_train_end()
    assert keeper.best_epoch == 2 and keeper.best_value == 1.0
    assert np.all(model.get_weights()[0] == 1.0)


def test_keep_best_weights_keeps_the_start_when_no_epoch_beats_it() -> None:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    start = [np.full((2, 1), 7.0, "float32"), np.full((1,), 7.0, "float32")]
    keeper = KeepBestWeights("val_loss", start=(0.5, start))
    keeper.set_model(model)
    for epoch, value in enumerate([3.0, 1.0]):
        model.set_weights([np.full((2, 1), epoch, "float32"), np.full((1,), epoch, "float32")])
        keeper.on_epoch_end(epoch, {"val_loss": value})
    keeper.on_train_end()
    assert keeper.best_epoch == 0 and keeper.best_value == 0.5
    assert np.all(model.get_weights()[0] == 7.0)


def _classes(rng: np.random.Generator, count: int) -> Arrays:
    """Two classes of 4-number features a head separates easily."""
    labels = rng.integers(0, 2, size=count)
    features = rng.normal(size=(count, 4)).astype("float32") + 3.0 * labels[:, None]
    boxes = np.zeros((count, 5), "float32")  # corners and "has a box": none here
    return Arrays(features, labels, boxes, np.ones(count, "float32"))


def _stage(model: keras.Model, train: Arrays, validation: Arrays, **kwargs: object) -> object:
    return fit_stage(
        model,
        train=train,
        train_inputs=train.features,
        validation=validation,
        validation_inputs=validation.features,
        epochs=2,
        batch_size=16,
        seed=0,
        report=lambda *_: None,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_stage_that_only_hurts_leaves_the_weights_it_started_from() -> None:
    rng = np.random.default_rng(0)
    train, validation = _classes(rng, 256), _classes(rng, 128)
    model = head_trainer(build_head(features=4, num_outputs=2, dropout_rate=0.0, seed=0))
    settings = {"box_weight": 0.0, "label_smoothing": 0.0, "weight_decay": 0.0}
    compile_for_training(model, learning_rate=0.05, **settings)  # type: ignore[arg-type]
    _stage(model, train, validation)
    fitted = [weight.copy() for weight in model.get_weights()]
    # the same photos with every label swapped: each epoch can only make validation worse
    swapped = Arrays(train.features, 1 - train.labels, train.boxes, train.weights)
    compile_for_training(model, learning_rate=0.05, **settings)  # type: ignore[arg-type]
    result = _stage(model, swapped, validation, keep_start=True)
    assert result.best_epoch == 0  # type: ignore[attr-defined]
    for kept, before in zip(model.get_weights(), fitted, strict=True):
        np.testing.assert_array_equal(kept, before)
    # without the guard the same stage keeps a worse epoch
    compile_for_training(model, learning_rate=0.05, **settings)  # type: ignore[arg-type]
    assert _stage(model, swapped, validation).best_epoch > 0  # type: ignore[attr-defined]


def test_linear_warmup_rises_to_the_learning_rate_then_holds() -> None:
    schedule = LinearWarmup(1e-3, warmup_steps=4)
    rates = [float(schedule(step)) for step in range(6)]
    np.testing.assert_allclose(rates, [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3], rtol=1e-6)


def test_the_fitting_pipelines_run_without_autotuning() -> None:
    """Autotuning made ending an epoch's iterator wait with the cores idle (see the README)."""
    rng = np.random.default_rng(2)
    arrays = Arrays(
        features=rng.normal(size=(10, 4)).astype(np.float16),
        labels=np.arange(10, dtype=np.int32) % 3,
        boxes=np.zeros((10, 5), dtype=np.float32),
        weights=np.ones(10, dtype=np.float32),
    )
    for seed in (None, 1):
        dataset = dataset_of(
            arrays, arrays.features, batch_size=4, shuffle_seed=seed, num_classes=3
        )
        assert dataset.options().autotune.enabled is False
        assert sum(len(batch[2]) for batch in dataset) == 10

    samples = [np.full((8, 8, 3), value, dtype=np.uint8) for value in range(40)]
    batches = sample_batches(lambda: iter(samples), 8)
    assert batches.options().autotune.enabled is False
    assert [len(batch) for batch in batches] == [32, 8]
