"""The Keras side of training: feature caching, the two fitting stages, keeping the best epoch.

Imported only by the training run, inside ``train_model`` (it imports Keras).

The backbone is cut in two at the start of the block where fine-tuning begins. The lower part is
frozen: it runs once over every (already augmented) sample and its output is cached. The head is
then fitted on pooled features, and the upper part fine-tuned with the head on the cached lower
features, at a low learning rate with batch normalisation frozen. The saved model is still one
Keras model on raw pixels, holding the very same layer objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from monitor.inference.model_dir import BOX_OUTPUT, LOGITS_OUTPUT
from monitor.inference.network import masked_box_loss, pool

EXTRACTION_BATCH = 32

BatchReport = Callable[[int, int, int, dict[str, float]], None]
"""(epoch, batch, batches, logs) after each training batch."""


@dataclass
class Arrays:
    """Cached inputs of one side (train or validation) with their targets."""

    features: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    weights: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class StageResult:
    """What one fitting stage did: the kept epoch and the per-epoch history."""

    best_epoch: int
    best_value: float
    history: dict[str, list[float]] = field(default_factory=dict)
    averaged_from: int | None = None
    """When set, the kept weights are the average of the epochs from this one to the last."""


def preprocessing(image_size: int) -> tuple[layers.Layer, layers.Layer]:
    """The resize and scale layers shared by feature extraction and the saved model."""
    return (
        layers.Resizing(image_size, image_size, antialias=True, name="resize"),
        layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale"),
    )


def cut_layer_name(backbone: keras.Model, finetune_from_block: int) -> str:
    """Name of the layer whose output enters block ``finetune_from_block`` of MobileNetV2."""
    previous = finetune_from_block - 1
    names = {layer.name for layer in backbone.layers}
    for candidate in (f"block_{previous}_add", f"block_{previous}_project_BN"):
        if candidate in names:
            return candidate
    raise ValueError(f"MobileNetV2 has no block {finetune_from_block} to fine-tune from (1-16)")


def split_backbone(
    backbone: keras.Model, cut: str | None
) -> tuple[keras.Model, keras.Model | None]:
    """The frozen lower part (to the cut) and the upper part fine-tuned later (None: no cut)."""
    if cut is None:
        return backbone, None
    cut_output = backbone.get_layer(cut).output
    lower = keras.Model(backbone.input, cut_output, name="backbone_lower")
    upper = keras.Model(cut_output, backbone.output, name="backbone_upper")
    return lower, upper


def extraction_function(
    lower: keras.Model, image_size: int, *, pooling: str | None
) -> Callable[[Any], Any]:
    """Compiled raw pixels -> lower features (pooled when the whole backbone is the lower part)."""
    resize, scale = preprocessing(image_size)
    pixels = keras.Input((image_size, image_size, 3))
    features = lower(scale(resize(pixels)), training=False)
    if pooling is not None:
        features = pool(features, pooling)
    model = keras.Model(pixels, features)
    return tf.function(lambda batch: model(tf.cast(batch, tf.float32), training=False))


def without_autotuning(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` with tf.data's autotuning off: its iterators end without waiting.

    With autotuning on, destroying a finished iterator (Keras makes one per epoch and one per
    validation pass) could block on a tf.data background thread for tens of seconds with every
    core idle, in about half of the second look's fine-tuning epochs in a full training run (the
    README gives the measurements). The pipelines here are a few fixed steps each (render or
    slice, shuffle, batch, cast, prefetch): there is little for autotuning to tune.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def sample_batches(samples: Callable[[], Iterator[np.ndarray]], image_size: int) -> tf.data.Dataset:
    """Batches of the rendered samples, rendered on tf.data's background thread."""
    dataset = (
        tf.data.Dataset.from_generator(
            samples, output_signature=tf.TensorSpec((image_size, image_size, 3), tf.uint8)
        )
        .batch(EXTRACTION_BATCH)
        .prefetch(2)
    )
    return without_autotuning(dataset)


def extract_features(
    extract: Callable[[Any], Any],
    samples: Callable[[], Iterator[np.ndarray]],
    *,
    count: int,
    image_size: int,
    on_batch: Callable[[int, int], None],
) -> np.ndarray:
    """Run the frozen lower part over every sample once; cache the result as float16.

    Samples are rendered (PIL) in tf.data's background thread while the previous batch runs
    through the network, which keeps both cores busy.
    """
    dataset = sample_batches(samples, image_size)
    batches = -(-count // EXTRACTION_BATCH)
    parts: list[np.ndarray] = []
    for index, batch in enumerate(dataset):
        parts.append(np.asarray(extract(batch)).astype(np.float16))
        on_batch(index + 1, batches)
    if not parts:
        raise ValueError("no samples to extract features from")
    return np.concatenate(parts)


def concatenate_arrays(
    base: Arrays,
    extra: Arrays,
    chosen: np.ndarray,
    *,
    weights_for: Callable[[np.ndarray], np.ndarray],
) -> Arrays:
    """``base`` with the ``chosen`` rows of ``extra`` appended, weighted by ``weights_for(labels)``.

    The weights are computed anew because adding samples of one class changes every class's share.
    """
    labels = np.concatenate([base.labels, extra.labels[chosen]])
    return Arrays(
        features=np.concatenate([base.features, extra.features[chosen]]),
        labels=labels,
        boxes=np.concatenate([base.boxes, extra.boxes[chosen]]),
        weights=weights_for(labels),
    )


def pool_features(upper: keras.Model | None, features: np.ndarray, pooling: str) -> np.ndarray:
    """Pooled backbone features of cached lower features (identity when there is no upper)."""
    if upper is None:
        return features.astype(np.float32)
    pooled_model = keras.Model(upper.input, pool(upper.output, pooling), name="pooled_upper")
    run = tf.function(lambda batch: pooled_model(tf.cast(batch, tf.float32), training=False))
    parts = [
        np.asarray(run(features[start : start + 128])) for start in range(0, len(features), 128)
    ]
    return np.concatenate(parts).astype(np.float32)


def compile_for_training(
    model: keras.Model,
    *,
    learning_rate: float,
    box_weight: float,
    label_smoothing: float,
    weight_decay: float,
    warmup_steps: int = 0,
) -> None:
    """AdamW, cross-entropy on logits (one-hot targets, smoothed), the masked box loss.

    With ``warmup_steps`` the learning rate rises linearly to ``learning_rate`` over that many
    batches: Adam's first steps move every weight by about the learning rate whatever its
    gradient, and on a pretrained backbone at a high rate they can wreck the features before the
    moment estimates settle (a fine-tuning at 3e-4 collapsed to chance accuracy that way).
    """
    rate: float | keras.optimizers.schedules.LearningRateSchedule = learning_rate
    if warmup_steps > 0:
        rate = LinearWarmup(learning_rate, warmup_steps)
    model.compile(
        optimizer=keras.optimizers.AdamW(rate, weight_decay=weight_decay),
        loss={
            LOGITS_OUTPUT: keras.losses.CategoricalCrossentropy(
                from_logits=True, label_smoothing=label_smoothing
            ),
            BOX_OUTPUT: masked_box_loss,
        },
        loss_weights={LOGITS_OUTPUT: 1.0, BOX_OUTPUT: box_weight},
        metrics={LOGITS_OUTPUT: ["categorical_accuracy"]},
    )


class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """A constant learning rate reached linearly over the first ``warmup_steps`` batches."""

    def __init__(self, learning_rate: float, warmup_steps: int) -> None:
        self.learning_rate = learning_rate
        self.warmup_steps = warmup_steps

    def __call__(self, step: Any) -> Any:
        done = keras.ops.cast(step, "float32") + 1.0
        return self.learning_rate * keras.ops.minimum(1.0, done / float(self.warmup_steps))

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}


def dataset_of(
    arrays: Arrays,
    inputs: np.ndarray,
    *,
    batch_size: int,
    shuffle_seed: int | None,
    num_classes: int,
) -> tf.data.Dataset:
    """A tf.data pipeline of (inputs, targets, sample weights), shuffled when a seed is given."""
    one_hot = np.eye(num_classes, dtype=np.float32)[arrays.labels]
    targets = {LOGITS_OUTPUT: one_hot, BOX_OUTPUT: arrays.boxes}
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets, arrays.weights))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(arrays), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(
        lambda features, target, weight: (tf.cast(features, tf.float32), target, weight),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return without_autotuning(dataset.prefetch(tf.data.AUTOTUNE))


class KeepBestWeights(keras.callbacks.Callback):
    """Remember the weights of the epoch with the lowest monitored value; restore them at the end.

    ``start`` is the value and weights the stage began with (epoch 0): an epoch must beat them
    to be kept, so a stage that only makes the model worse leaves it as it found it.
    """

    def __init__(self, monitor: str, start: tuple[float, list[np.ndarray]] | None = None) -> None:
        super().__init__()
        self.monitor = monitor
        self.best_value = float("inf") if start is None else start[0]
        self.best_epoch = 0
        self._best_weights: list[np.ndarray] | None = None if start is None else start[1]

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is not None and value < self.best_value:
            self.best_value = float(value)
            self.best_epoch = epoch + 1
            self._best_weights = self.model.get_weights()

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)


class AverageWeights(keras.callbacks.Callback):
    """Sum the weights of every epoch from ``start`` on, for their average (weight averaging).

    Averaging the weights the optimiser passes through late in training lands in a flatter, more
    general place than any single epoch, and the model varies less from run to run. With batch
    normalisation frozen the averaged weights need no statistics recomputed.
    """

    def __init__(self, start: int) -> None:
        super().__init__()
        self.start = start
        self.count = 0
        self._sums: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if epoch + 1 < self.start:
            return
        weights = self.model.get_weights()
        if self._sums is None:
            self._sums = [weight.astype(np.float64) for weight in weights]
        else:
            for total, weight in zip(self._sums, weights, strict=True):
                total += weight
        self.count += 1

    def averaged(self) -> list[np.ndarray] | None:
        """The average weights, or None when no epoch was summed."""
        if self._sums is None:
            return None
        return [(total / self.count).astype(np.float32) for total in self._sums]


class ReportBatches(keras.callbacks.Callback):
    """Forward batch-level progress to the caller's progress function."""

    def __init__(self, report: BatchReport, batches: int) -> None:
        super().__init__()
        self.report = report
        self.batches = batches
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        self.report(self.epoch, batch + 1, self.batches, dict(logs or {}))


def fit_stage(
    model: keras.Model,
    *,
    train: Arrays,
    train_inputs: np.ndarray,
    validation: Arrays | None,
    validation_inputs: np.ndarray | None,
    epochs: int,
    batch_size: int,
    seed: int,
    report: BatchReport,
    average_from: int | None = None,
    keep_start: bool = False,
) -> StageResult:
    """Fit ``model`` for ``epochs`` and keep the epoch with the lowest validation class loss.

    The loss rather than the accuracy: a head that has grown overconfident on its training windows
    can keep the accuracy while its loss soars, and fine-tuning from it goes worse (measured:
    0.81 against 0.85 validation window accuracy). Without validation samples the training loss
    decides (the best that can be done).

    With ``average_from``, the average of the weights of the epochs from that one on is kept
    instead when its validation loss is lower still. With ``keep_start`` (fine-tuning a head
    already fitted) the weights the stage starts from compete too, as epoch 0: a fine-tuning that
    diverges then costs its time but not the model.
    """
    num_classes = int(model.output[LOGITS_OUTPUT].shape[-1])
    train_data = dataset_of(
        train, train_inputs, batch_size=batch_size, shuffle_seed=seed, num_classes=num_classes
    )
    validation_data = None
    prefix = ""
    if validation is not None and validation_inputs is not None and len(validation):
        validation_data = dataset_of(
            validation,
            validation_inputs,
            batch_size=batch_size * 2,
            shuffle_seed=None,
            num_classes=num_classes,
        )
        prefix = "val_"
    start = None
    if keep_start and validation_data is not None:
        scores = model.evaluate(validation_data, verbose=0, return_dict=True)
        start = (float(scores[f"{LOGITS_OUTPUT}_loss"]), model.get_weights())
    keeper = KeepBestWeights(f"{prefix}{LOGITS_OUTPUT}_loss", start)
    averager = AverageWeights(average_from or epochs + 1)
    batches = -(-len(train) // batch_size)
    history = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=epochs,
        verbose=0,
        shuffle=False,
        callbacks=[keeper, averager, ReportBatches(report, batches)],
    )
    result = StageResult(
        best_epoch=keeper.best_epoch,
        best_value=keeper.best_value,
        history={
            name: [float(value) for value in values] for name, values in history.history.items()
        },
    )
    averaged = averager.averaged()
    if averaged is not None and validation_data is not None and averager.count > 1:
        result = _prefer_average(model, result, averaged, validation_data, averager.start)
    return result


def _prefer_average(
    model: keras.Model,
    result: StageResult,
    averaged: list[np.ndarray],
    validation_data: tf.data.Dataset,
    start: int,
) -> StageResult:
    """Keep the averaged weights when their validation class loss beats the best epoch's."""
    best = model.get_weights()
    model.set_weights(averaged)
    scores = model.evaluate(validation_data, verbose=0, return_dict=True)
    loss = float(scores[f"{LOGITS_OUTPUT}_loss"])
    if loss < result.best_value:
        return StageResult(0, loss, result.history, averaged_from=start)
    model.set_weights(best)
    return result


def head_trainer(head: keras.Model) -> keras.Model:
    """A model around the head to compile and fit, so the head itself carries no training config.

    The saved model holds the head; a compiled head would save its custom loss with it and need
    that function to load.
    """
    pooled = keras.Input(head.input.shape[1:], name="pooled_features")
    return keras.Model(pooled, head(pooled), name="head_trainer")


def finetune_model(
    upper: keras.Model, head: keras.Model, input_shape: tuple[int, ...], pooling: str
) -> keras.Model:
    """Cached lower features -> upper backbone (batch norm frozen) -> pool -> head."""
    for layer in upper.layers:
        layer.trainable = not isinstance(layer, layers.BatchNormalization)
    features = keras.Input(input_shape, name="lower_features")
    upper_features = upper(features, training=False)
    return keras.Model(features, head(pool(upper_features, pooling)), name="finetune")


def predict_logits(model: keras.Model, inputs: np.ndarray, *, batch_size: int = 128) -> np.ndarray:
    """The logits output of ``model`` over ``inputs`` in batches, as float64."""
    run = tf.function(lambda batch: model(tf.cast(batch, tf.float32), training=False))
    parts = [
        np.asarray(run(inputs[start : start + batch_size])[LOGITS_OUTPUT])
        for start in range(0, len(inputs), batch_size)
    ]
    return np.concatenate(parts).astype(np.float64)
