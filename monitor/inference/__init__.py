"""Logo recognition: the model directory format, the classifier, training and evaluation.

Only this package imports TensorFlow, and only when a model is loaded, trained or evaluated.
Importing ``monitor.inference`` (or ``monitor.inference.model_dir``, to read a model's labels) is
cheap: the classifier, with numpy and PIL, is imported on first use of its names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.inference.classifier import LogoClassifier, load_classifier

__all__ = ["LogoClassifier", "load_classifier"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from monitor.inference import classifier

        return getattr(classifier, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
