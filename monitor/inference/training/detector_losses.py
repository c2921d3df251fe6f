"""The detector's training losses (TensorFlow): a focal loss on the heatmap, GIoU on the boxes.

Only training needs these; the saved model is not compiled with them.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from monitor.inference.heatmaps import LOG_DISTANCE_LIMIT

FOCAL_ALPHA = 2.0
FOCAL_BETA = 4.0
SCORE_CLIP = 1e-4


def heatmap_focal_loss(target: Any, predicted: Any, weight: Any) -> Any:
    """CenterNet's penalty-reduced focal loss, summed and divided by the number of logos.

    ``target`` and ``predicted`` are (batch, rows, cols, channels): one channel for objectness.

    Near-centre background cells (target close to 1) are penalised less, and easy background
    (most of every photo) hardly at all: the loss itself handles the hard negatives, so no crops
    need to be mined by hand. ``weight`` (batch, rows, cols) is 0 where a logo was cut too much.
    """
    score = tf.clip_by_value(predicted, SCORE_CLIP, 1.0 - SCORE_CLIP)
    positive = tf.cast(target >= 1.0, tf.float32)
    cell_weight = weight[..., None]
    positive_loss = -tf.math.log(score) * (1.0 - score) ** FOCAL_ALPHA * positive
    negative_loss = (
        -tf.math.log(1.0 - score)
        * score**FOCAL_ALPHA
        * (1.0 - target) ** FOCAL_BETA
        * (1.0 - positive)
    )
    total = tf.reduce_sum((positive_loss + negative_loss) * cell_weight)
    return total / tf.maximum(tf.reduce_sum(positive), 1.0)


def box_giou_loss(target: Any, predicted: Any, weight: Any) -> Any:
    """1 - GIoU of the box read at each cell near a logo's centre, weighted, per logo.

    ``predicted`` holds log distances (cells) from each cell's centre to the four sides; ``target``
    the logo's corners in cells. Each logo's weights sum to 1, so the sum of weights counts logos.
    """
    rows = tf.shape(predicted)[1]
    columns = tf.shape(predicted)[2]
    centre_y = tf.cast(tf.range(rows), tf.float32)[None, :, None] + 0.5
    centre_x = tf.cast(tf.range(columns), tf.float32)[None, None, :] + 0.5
    distances = tf.exp(tf.clip_by_value(predicted, -LOG_DISTANCE_LIMIT, LOG_DISTANCE_LIMIT))
    x1 = centre_x - distances[..., 0]
    y1 = centre_y - distances[..., 1]
    x2 = centre_x + distances[..., 2]
    y2 = centre_y + distances[..., 3]
    tx1, ty1, tx2, ty2 = (target[..., index] for index in range(4))
    area = (x2 - x1) * (y2 - y1)
    target_area = tf.maximum(tx2 - tx1, 0.0) * tf.maximum(ty2 - ty1, 0.0)
    inter_w = tf.maximum(tf.minimum(x2, tx2) - tf.maximum(x1, tx1), 0.0)
    inter_h = tf.maximum(tf.minimum(y2, ty2) - tf.maximum(y1, ty1), 0.0)
    intersection = inter_w * inter_h
    union = area + target_area - intersection + 1e-6
    hull = (tf.maximum(x2, tx2) - tf.minimum(x1, tx1)) * (tf.maximum(y2, ty2) - tf.minimum(y1, ty1))
    giou = intersection / union - (hull - union) / (hull + 1e-6)
    total = tf.reduce_sum((1.0 - giou) * weight)
    return total / tf.maximum(tf.reduce_sum(weight), 1.0)


def brand_cross_entropy(labels: Any, logits: Any, weight: Any) -> Any:
    """Softmax cross-entropy of the brand at every cell near a logo's centre, weighted, per logo."""
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_sum(losses * weight) / tf.maximum(tf.reduce_sum(weight), 1.0)
