"""The Keras networks: the MobileNetV2 logo model and the tiny stand-in used by tests.

Imported only by inference code that needs TensorFlow (training, the tiny model writer, the
classifier's loader), never at package import, so commands that do not classify start fast.

Both networks have the same shape of input and outputs: raw RGB pixels of any size in, resized and
scaled inside the model (``resize`` and ``scale`` layers), and a head on pooled features with two
outputs: ``logits`` (one column per brand, the last for "no logo") and ``box`` (where the logo is,
as fractions of the input). The head is a model of its own so that training can fit it on cached
features and the saved model still holds the very same layers.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from monitor.exceptions import ConfigurationError
from monitor.inference.model_dir import BOX_OUTPUT, LOGITS_OUTPUT

RANDOM_WEIGHTS = "random"
BACKBONE_FEATURES = 1280
"""Channels of MobileNetV2's last feature map (alpha 1.0)."""
POOLINGS = ("average", "average_max")


def pooled_width(pooling: str) -> int:
    """Width of the pooled features for a pooling kind."""
    return BACKBONE_FEATURES * (2 if pooling == "average_max" else 1)


def pool(features: keras.KerasTensor, pooling: str) -> keras.KerasTensor:
    """Pool a feature map to a vector: the average, or the average beside the maximum.

    The maximum keeps the response of a logo that fills a small part of the window, which the
    average dilutes with the background around it.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    average = layers.GlobalAveragePooling2D(name="pool_average")(features)
    if pooling == "average":
        return average
    maximum = layers.GlobalMaxPooling2D(name="pool_max")(features)
    return layers.Concatenate(name="pool")([average, maximum])


def build_backbone(*, image_size: int, weights: str) -> keras.Model:
    """MobileNetV2 without its ImageNet classifier, on ``image_size`` pixels scaled to [-1, 1].

    ``weights`` is "imagenet" (found in the Keras cache, downloaded otherwise) or the path of an
    .h5 file with the same weights for machines without internet. "random" leaves the network
    untrained: useless for logos, but it lets tests run the whole training path in seconds.
    """
    if weights not in ("imagenet", RANDOM_WEIGHTS) and not Path(weights).is_file():
        raise ConfigurationError(
            f"backbone weights {weights!r} are neither 'imagenet' nor an existing .h5 file"
        )
    try:
        if weights == "imagenet" and image_size in KERAS_OWN_SIZES:
            # Keras has separate ImageNet files for these sizes and would download one; the
            # 224-pixel weights (the one file offline machines have) fit any size instead.
            backbone = _mobilenet(image_size, None)
            backbone.set_weights(_mobilenet(IMAGENET_SIZE, weights).get_weights())
            return backbone
        return _mobilenet(image_size, None if weights == RANDOM_WEIGHTS else weights)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot load backbone weights {weights!r}: {exc}") from exc


IMAGENET_SIZE = 224
KERAS_OWN_SIZES = (96, 128, 160, 192)
"""Input sizes for which Keras looks for ImageNet weights of their own, not the 224 ones."""


def _mobilenet(image_size: int, weights: str | None) -> keras.Model:
    with warnings.catch_warnings():
        # Sizes other than Keras's five get its 224-pixel weights, with a warning: that is the
        # intent (convolution weights do not depend on the input size).
        warnings.filterwarnings("ignore", message=".*Weights for input shape.*")
        return keras.applications.MobileNetV2(
            input_shape=(image_size, image_size, 3),
            include_top=False,
            weights=weights,
            alpha=1.0,
        )


def build_head(*, features: int, num_outputs: int, dropout_rate: float, seed: int) -> keras.Model:
    """The classifier and box head on pooled features.

    Dropout regularises the few hundred photos a brand set usually has; the box output is a
    sigmoid so a box never leaves the window it was found in.
    """
    pooled = keras.Input((features,), name="pooled")
    dropped = layers.Dropout(dropout_rate, seed=seed, name="dropout")(pooled)
    logits = layers.Dense(
        num_outputs, name=LOGITS_OUTPUT, kernel_initializer=keras.initializers.GlorotUniform(seed)
    )(dropped)
    box = layers.Dense(
        4,
        activation="sigmoid",
        name=BOX_OUTPUT,
        kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
    )(dropped)
    return keras.Model(pooled, {LOGITS_OUTPUT: logits, BOX_OUTPUT: box}, name="head")


def build_logo_model(
    *,
    backbone: keras.Model,
    head: keras.Model,
    image_size: int,
    pooling: str = "average",
    resize: bool = True,
) -> keras.Model:
    """The whole model on raw pixels: resize, scale to [-1, 1], backbone, pool, head.

    The backbone runs with ``training=False`` so its batch-norm statistics stay the ImageNet ones
    even while its top layers are fine-tuned. ``resize=False`` gives the same network on pixels
    already at ``image_size`` (for the int8 export: LiteRT has no antialiased resize).
    """
    if resize:
        pixels = keras.Input((None, None, 3), name="pixels")
        sized = layers.Resizing(image_size, image_size, antialias=True, name="resize")(pixels)
    else:
        pixels = keras.Input((image_size, image_size, 3), name="pixels")
        sized = pixels
    scaled = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(sized)
    features = backbone(scaled, training=False)
    return keras.Model(pixels, head(pool(features, pooling)), name="logo_model")


def build_tiny_model(*, num_outputs: int, image_size: int, seed: int) -> keras.Model:
    """A two-convolution network with random weights: the real format, built in a second.

    The head's weights are drawn large so that different pictures give clearly different answers
    (some a brand, some no logo) instead of a near-uniform guess, and its boxes sit around the
    middle of the window (about 60% of its size) so they look like boxes, not dots.
    """
    pixels = keras.Input((None, None, 3), name="pixels")
    resized = layers.Resizing(image_size, image_size, antialias=True, name="resize")(pixels)
    scaled = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(resized)
    hidden = scaled
    for index, filters in enumerate((8, 16)):
        hidden = layers.Conv2D(
            filters,
            3,
            strides=2,
            activation="relu",
            kernel_initializer=keras.initializers.HeNormal(seed + 10 + index),
            name=f"conv_{index}",
        )(hidden)
    pooled = layers.GlobalAveragePooling2D(name="pool")(hidden)
    head = build_head(features=16, num_outputs=num_outputs, dropout_rate=0.0, seed=seed)
    logits_layer = head.get_layer(LOGITS_OUTPUT)
    kernel, bias = logits_layer.get_weights()
    generator = keras.random.SeedGenerator(seed)
    large = keras.random.normal(kernel.shape, stddev=8.0, seed=generator)
    logits_layer.set_weights([keras.ops.convert_to_numpy(large), bias])
    box_layer = head.get_layer(BOX_OUTPUT)
    box_kernel, _ = box_layer.get_weights()
    centred_box = np.log(np.array([0.2, 0.2, 0.8, 0.8]) / (1 - np.array([0.2, 0.2, 0.8, 0.8])))
    box_layer.set_weights([box_kernel * 0.1, centred_box.astype("float32")])
    return keras.Model(pixels, head(pooled), name="tiny_logo_model")


def masked_box_loss(y_true: Any, y_pred: Any) -> Any:
    """L1 distance of box corners, counted only for samples that show a logo.

    Part of the network's definition, not of training alone: the head is saved compiled with it,
    so loading a model needs it too.

    ``y_true`` has a fifth column: 1 when the sample has a box, 0 for "no logo" samples.
    """
    has_box = y_true[:, 4:5]
    return ops.sum(ops.abs(y_true[:, :4] - y_pred) * has_box, axis=-1)
