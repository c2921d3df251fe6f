"""The one place that imports TensorFlow, on first use, with its start-up chatter turned down."""

from __future__ import annotations

import os
from types import ModuleType


def import_tensorflow() -> ModuleType:
    """Import TensorFlow (a second or more), keeping its C++ info logs off the user's terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow

    return tensorflow
