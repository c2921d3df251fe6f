"""Training a logo model: ``train_model(dataset_dir=..., out_dir=..., options=TrainOptions())``.

``options`` (what a run is told and tells back) and ``data`` (reading, splitting, checking the
photos) need no TensorFlow; ``recipe`` writes the model directory and runs ``run`` (the Keras
stages, with ``fitting``) only once the data is known to be good. Serving code imports none of it.
"""

from __future__ import annotations

from monitor.inference.training.data import class_weights, loss_share
from monitor.inference.training.options import (
    ModelInfo,
    TrainingProgress,
    TrainOptions,
    resolved_architecture,
)
from monitor.inference.training.recipe import train_model

__all__ = [
    "ModelInfo",
    "TrainOptions",
    "TrainingProgress",
    "class_weights",
    "loss_share",
    "resolved_architecture",
    "train_model",
]
