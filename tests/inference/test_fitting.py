"""Keeping the best epoch and averaging weights during fitting (a small Keras model)."""

from __future__ import annotations

import keras
import numpy as np

from monitor.inference.training.fitting import AverageWeights, KeepBestWeights


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
