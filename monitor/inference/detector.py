"""The one-pass logo detector's Keras network: MobileNetV2 features at three strides, a small
feature pyramid and a CenterNet-style head (``monitor.inference.heatmaps`` reads its outputs).

Imported only by inference code that needs TensorFlow. The saved model eats raw pixels, like the
window model: a square of ``input_size`` RGB pixels (the photo letterboxed onto it), scaled to
[-1, 1] inside, with two outputs: ``heatmap`` (cells x brands, sigmoid) and ``box`` (cells x 4,
log distances to the logo's sides).

The backbone is split from the head so that training runs the frozen backbone once per training
view and fits the pyramid and head on the cached features; the saved model joins the two, the very
same layers.
"""

from __future__ import annotations

import keras
from keras import layers

from monitor.inference.heatmaps import STRIDE
from monitor.inference.model_dir import BOX_OUTPUT, HEATMAP_OUTPUT
from monitor.inference.network import build_backbone

FEATURE_LAYERS = ("block_5_add", "block_12_add", "out_relu")
"""MobileNetV2 layers the pyramid starts from: strides 8, 16 and 32."""
FEATURE_CHANNELS = (32, 96, 1280)
FINETUNE_CUT = "block_9_add"
"""Training fine-tunes the blocks after this one (10-16, strides 16 and 32)."""
OBJECTNESS_OUTPUT = "objectness"
CLASS_OUTPUT = "class_logits"
PRIOR_PROBABILITY = 0.01
"""The heatmap's starting score everywhere (focal-loss initialisation: most cells are background)."""


def build_feature_extractor(*, input_size: int, weights: str) -> keras.Model:
    """MobileNetV2 on pixels scaled to [-1, 1], giving its features at strides 8, 16 and 32."""
    backbone = build_backbone(image_size=input_size, weights=weights)
    outputs = [backbone.get_layer(name).output for name in FEATURE_LAYERS]
    return keras.Model(backbone.input, outputs, name="features")


def split_feature_extractor(
    extractor: keras.Model, cut: str = FINETUNE_CUT
) -> tuple[keras.Model, keras.Model]:
    """The extractor as a frozen lower part and a fine-tuned upper part sharing its layers.

    The lower part gives the stride-8 features and the output of layer ``cut`` (a block between
    strides 8 and 16); the upper part takes that to the stride-16 and stride-32 features. The
    upper blocks work on the smallest maps, so fine-tuning them costs little.
    """
    stride_8, stride_16, stride_32 = (extractor.get_layer(name).output for name in FEATURE_LAYERS)
    cut_output = extractor.get_layer(cut).output
    lower = keras.Model(extractor.input, [stride_8, cut_output], name="features_lower")
    upper = keras.Model(cut_output, [stride_16, stride_32], name="features_upper")
    lower.trainable = False
    return lower, upper


LOWER_OUTPUTS = ("stride_8", "cut")
"""The outputs of ``build_lower_features_model``, by name."""


def build_lower_features_model(*, lower: keras.Model, input_size: int) -> keras.Model:
    """The frozen lower part on raw pixels (0-255, scaled inside), its two maps by name.

    What training runs once per view, on a CPU as a float32 LiteRT program, which needs named
    outputs.
    """
    pixels = keras.Input((input_size, input_size, 3), name="pixels")
    scaled = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(pixels)
    stride_8, cut = lower(scaled, training=False)
    return keras.Model(
        pixels, dict(zip(LOWER_OUTPUTS, (stride_8, cut), strict=True)), name="lower_features"
    )


def build_detector_head(
    *, num_classes: int, width: int = 128, channels: tuple[int, ...] = FEATURE_CHANNELS, seed: int
) -> keras.Model:
    """The feature pyramid and the heatmap and box branches, on the three feature maps.

    The heatmap is the product of a logo-or-not score (``objectness``, trained with a focal loss
    on the logo centres) and the brand probabilities of the cell (``class_logits``, a softmax
    trained on every cell near a logo's centre). Naming the brand from many cells at once, as a
    27-way choice, learns far more from a few hundred photos than 27 separate centre heatmaps.

    Top-down: the stride-32 map, which knows what a brand looks like, is brought up to stride 8,
    which knows where the edges are, so small logos get both. Separable convolutions keep the head
    a small fraction of the backbone's cost.
    """
    initializer = keras.initializers.HeNormal(seed)
    inputs = [
        keras.Input((None, None, count), name=f"stride_{STRIDE * 2**index}")
        for index, count in enumerate(channels)
    ]
    lateral = [
        layers.Conv2D(width, 1, kernel_initializer=initializer, name=f"lateral_{index}")(feature)
        for index, feature in enumerate(inputs)
    ]
    merged = lateral[2]
    for index in (1, 0):
        upsampled = layers.UpSampling2D(2, name=f"up_{index}")(merged)
        merged = layers.Add(name=f"merge_{index}")([lateral[index], upsampled])
        merged = _separable_block(merged, width, f"smooth_{index}", seed)
    heat = merged
    box = merged
    for index in range(2):
        heat = _separable_block(heat, width, f"heat_{index}", seed)
        box = _separable_block(box, width, f"box_{index}", seed)
    prior = float(-keras.ops.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY))
    objectness = layers.Conv2D(
        1,
        1,
        activation="sigmoid",
        bias_initializer=keras.initializers.Constant(prior),
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=seed),
        name=OBJECTNESS_OUTPUT,
    )(heat)
    class_logits = layers.Conv2D(
        num_classes,
        1,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=seed + 2),
        name=CLASS_OUTPUT,
    )(heat)
    brand_probabilities = layers.Softmax(name="brand_probabilities")(class_logits)
    heatmap = layers.Multiply(name=HEATMAP_OUTPUT)([objectness, brand_probabilities])
    distances = layers.Conv2D(
        4,
        1,
        bias_initializer=keras.initializers.Constant(1.0),
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=seed + 1),
        name=BOX_OUTPUT,
    )(box)
    outputs = {
        HEATMAP_OUTPUT: heatmap,
        BOX_OUTPUT: distances,
        OBJECTNESS_OUTPUT: objectness,
        CLASS_OUTPUT: class_logits,
    }
    return keras.Model(inputs, outputs, name="head")


def _separable_block(
    tensor: keras.KerasTensor, width: int, name: str, seed: int
) -> keras.KerasTensor:
    """3x3 depthwise-separable convolution, batch norm, ReLU."""
    convolved = layers.SeparableConv2D(
        width,
        3,
        padding="same",
        use_bias=False,
        depthwise_initializer=keras.initializers.HeNormal(seed),
        pointwise_initializer=keras.initializers.HeNormal(seed),
        name=f"{name}_conv",
    )(tensor)
    normalised = layers.BatchNormalization(name=f"{name}_bn")(convolved)
    return layers.ReLU(name=f"{name}_relu")(normalised)


def build_detector_model(
    *, extractor: keras.Model, head: keras.Model, input_size: int
) -> keras.Model:
    """The whole detector on raw pixels: resize (a no-op on letterboxed input), scale, features, head."""
    pixels = keras.Input((None, None, 3), name="pixels")
    resized = layers.Resizing(input_size, input_size, name="resize")(pixels)
    scaled = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(resized)
    outputs = head(extractor(scaled, training=False), training=False)
    return keras.Model(
        pixels,
        {HEATMAP_OUTPUT: outputs[HEATMAP_OUTPUT], BOX_OUTPUT: outputs[BOX_OUTPUT]},
        name="logo_detector",
    )


def build_tiny_detector(*, num_classes: int, input_size: int, seed: int) -> keras.Model:
    """Three strided convolutions and the real head with random weights: the real format in a second.

    The heatmap's bias is raised so random pictures give scores across the range (some peaks over
    any threshold, some under) instead of a flat 0.01 everywhere.
    """
    pixels = keras.Input((None, None, 3), name="pixels")
    resized = layers.Resizing(input_size, input_size, name="resize")(pixels)
    scaled = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(resized)
    hidden = scaled
    features = []
    for index, filters in enumerate((8, 8, 8, 16, 16)):
        hidden = layers.Conv2D(
            filters,
            3,
            strides=2,
            padding="same",
            activation="relu",
            kernel_initializer=keras.initializers.HeNormal(seed + 10 + index),
            name=f"conv_{index}",
        )(hidden)
        if index >= 2:
            features.append(hidden)
    head = build_detector_head(num_classes=num_classes, width=16, channels=(8, 16, 16), seed=seed)
    generator = keras.random.SeedGenerator(seed)
    for name, bias_value in ((OBJECTNESS_OUTPUT, 1.0), (CLASS_OUTPUT, 0.0)):
        layer = head.get_layer(name)
        kernel, bias = layer.get_weights()
        large = keras.random.normal(kernel.shape, stddev=3.0, seed=generator)
        layer.set_weights([keras.ops.convert_to_numpy(large), bias * 0 + bias_value])
    outputs = head(features)
    return keras.Model(
        pixels,
        {HEATMAP_OUTPUT: outputs[HEATMAP_OUTPUT], BOX_OUTPUT: outputs[BOX_OUTPUT]},
        name="tiny_logo_detector",
    )
