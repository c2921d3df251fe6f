"""Logo recognition: the model directory format, the classifier, training and evaluation.

Only this package imports TensorFlow, and only when a model is loaded, trained or evaluated;
importing ``monitor.inference`` itself is cheap.
"""

from __future__ import annotations

from monitor.inference.classifier import LogoClassifier, load_classifier

__all__ = ["LogoClassifier", "load_classifier"]
