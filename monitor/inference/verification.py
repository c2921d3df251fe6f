"""A second look at the detector's best candidates: where it looks and how its answer counts.

The one-pass detector sees a photo shrunk onto a few hundred pixels, where a small logo is a
smudge of a dozen: it finds and boxes logos well there, but it names the wrong brand or scores a
logo-like texture high too often. So its best few candidates are looked at again: a square window
around each candidate's box, cut from the photo at its own resolution, goes through a window
classifier (the same network as the window model: brands plus "no logo"). The classifier names
the brand, weighing in the detector's own brand probabilities at the candidate as far as a fit on
validation candidates says they help (``brand_fusion``); a logistic fit on validation candidates
combines the two networks' scores into one probability. The box stays the detector's.

No TensorFlow here: the classifier arrives as a ``Predict`` function (Keras or LiteRT).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from monitor.domain import Box

SCORE_EPSILON = 1e-6
FEATURES = ("detector score", "classifier logo probability")
"""What the combination weighs, in order, as logits, then a constant. (On FlickrLogos-27
validation, adding whether the two brands agree and the classifier's brand probability did not
raise brand accuracy: 0.69-0.70 against 0.71.)"""
IDENTITY_COMBINATION = (0.0, 1.0, 0.0)
"""The classifier's logo probability alone: where the fit starts and its answer without data."""
BRAND_FUSION_LIMIT = 4.0
BRAND_FUSION_STEPS = tuple(
    round(0.05 * step, 2) for step in range(int(BRAND_FUSION_LIMIT / 0.05) + 1)
)
"""The detector weights the brand fit tries, 0 to ``BRAND_FUSION_LIMIT``."""


@dataclass(frozen=True)
class VerifierSettings:
    """How the second look is taken, saved in the model directory's metadata.

    ``context``: the window's side over the box's longer side (the logo and some of what surrounds
    it, as the classifier was trained). ``candidates``: how many of a photo's best candidates are
    looked at again; the rest are dropped. ``min_side``: the smallest window cut, in photo pixels.
    ``temperature`` scales the classifier's logits (fitted on validation windows).
    ``brand_fusion`` is the weight of the detector's log brand probabilities added to the
    classifier's when naming the brand (0: the classifier alone; fitted on validation).
    ``combination`` holds the weights of the logistic fit on validation candidates, one per
    entry of ``FEATURES``, then the intercept.
    """

    input_size: int = 160
    context: float = 1.6
    candidates: int = 3
    min_side: int = 32
    temperature: float = 1.0
    brand_fusion: float = 0.0
    combination: tuple[float, ...] = IDENTITY_COMBINATION

    def __post_init__(self) -> None:
        if not 32 <= self.input_size <= 640:
            raise ValueError(f"verifier input_size must be in [32, 640], got {self.input_size}")
        if self.context < 1 or self.candidates < 1 or self.min_side < 1:
            raise ValueError("verifier context must be >= 1, candidates and min_side positive")
        if not self.temperature > 0:
            raise ValueError(f"verifier temperature must be positive, got {self.temperature}")
        if not 0 <= self.brand_fusion <= BRAND_FUSION_LIMIT:
            raise ValueError(
                f"verifier brand_fusion must be in [0, {BRAND_FUSION_LIMIT}], got {self.brand_fusion}"
            )
        if len(self.combination) != len(FEATURES) + 1 or not all(
            math.isfinite(value) for value in self.combination
        ):
            raise ValueError(
                f"verifier combination must be {len(FEATURES) + 1} numbers, got {self.combination}"
            )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready values (the tuple becomes a list)."""
        return {
            "input_size": self.input_size,
            "context": self.context,
            "candidates": self.candidates,
            "min_side": self.min_side,
            "temperature": self.temperature,
            "brand_fusion": self.brand_fusion,
            "combination": list(self.combination),
        }


def verification_window(
    box: Box, photo_size: tuple[int, int], *, context: float, min_side: int
) -> Box:
    """The square window around ``box`` that the classifier looks at, inside the photo.

    Its side is ``context`` times the box's longer side (at least ``min_side``); it is centred on
    the box and moved, not shrunk, to stay inside the photo; only a photo narrower than the
    window clips it (the classifier then sees it stretched, as it did in training).
    """
    width, height = photo_size
    left, top, right, bottom = box
    side = max(float(min_side), context * max(right - left, bottom - top))
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    x0, x1 = _span(centre_x, side, width)
    y0, y1 = _span(centre_y, side, height)
    return (x0, y0, x1, y1)


def _span(centre: float, side: float, limit: int) -> tuple[int, int]:
    """[start, end) of length ``side`` around ``centre``, shifted inside [0, limit)."""
    if side >= limit:
        return 0, limit
    start = min(max(0.0, centre - side / 2), limit - side)
    first = round(start)
    return first, min(limit, max(first + 1, round(start + side)))


@dataclass(frozen=True)
class LookedAgain:
    """One candidate after the second look: the detector's view and the classifier's.

    ``detector_score`` is the detector's calibrated score; ``brand`` the brand named (the
    classifier's, or the fused one), ``logo_probability`` the classifier's 1 - P(no logo).
    ``classifier_brands`` and ``detector_brands`` are the two networks' probabilities over the
    brands (the classifier's without "no logo", renormalised), kept so that the brand fusion can
    be fitted and applied without running either network again.
    """

    box: Box
    detector_score: float
    brand: str
    logo_probability: float
    classifier_brands: tuple[float, ...] = ()
    detector_brands: tuple[float, ...] = ()


def candidate_features(looked: Sequence[LookedAgain]) -> np.ndarray:
    """The (n, len(FEATURES)) inputs of the combination for ``looked``."""
    if not looked:
        return np.zeros((0, len(FEATURES)))
    return np.stack(
        [
            score_logit([item.detector_score for item in looked]),
            score_logit([item.logo_probability for item in looked]),
        ],
        axis=1,
    )


def score_logit(scores: np.ndarray | Sequence[float]) -> np.ndarray:
    """logit(s), with s kept off 0 and 1 so certain scores stay finite."""
    clipped = np.clip(np.asarray(scores, dtype=np.float64), SCORE_EPSILON, 1 - SCORE_EPSILON)
    return np.log(clipped / (1 - clipped))


def combined_probability(features: np.ndarray, combination: Sequence[float]) -> np.ndarray:
    """sigmoid(features . weights + intercept), ``combination`` being (weights..., intercept)."""
    weights = np.asarray(combination, dtype=np.float64)
    value = np.asarray(features, dtype=np.float64) @ weights[:-1] + weights[-1]
    return 0.5 * (1 + np.tanh(value / 2))


def fused_brand_logits(
    classifier_brands: np.ndarray, detector_brands: np.ndarray, weight: float
) -> np.ndarray:
    """log P_classifier(brand) + weight x log P_detector(brand), row by row (unnormalised)."""
    return np.log(np.clip(classifier_brands, SCORE_EPSILON, 1.0)) + weight * np.log(
        np.clip(detector_brands, SCORE_EPSILON, 1.0)
    )


def fit_brand_fusion(
    classifier_brands: np.ndarray, detector_brands: np.ndarray, labels: np.ndarray
) -> float:
    """The detector weight with the lowest validation NLL of the true brands (0 without data).

    The rows are validation candidates on a logo and ``labels`` their logos' brands. A smooth
    loss over every candidate rather than the count of photos named right: with a hundred
    validation photos, the count moves in steps of one photo and would pick a weight by chance.
    Ties go to the smaller weight (the classifier alone, as before the fit).
    """
    labels = np.asarray(labels, dtype=int)
    if len(labels) == 0:
        return 0.0
    classifier = np.asarray(classifier_brands, dtype=np.float64)
    detector = np.asarray(detector_brands, dtype=np.float64)

    def loss(weight: float) -> float:
        logits = fused_brand_logits(classifier, detector, weight)
        logits -= logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits).sum(axis=1))
        return float(np.mean(log_norm - logits[np.arange(len(labels)), labels]))

    losses = [loss(weight) for weight in BRAND_FUSION_STEPS]
    return float(BRAND_FUSION_STEPS[int(np.argmin(losses))])


def with_fused_brand(looked: LookedAgain, labels: Sequence[str], weight: float) -> LookedAgain:
    """``looked`` naming the brand the two networks agree on best at ``weight``.

    Without both distributions (or at weight 0) the classifier's brand stays.
    """
    if not looked.classifier_brands or not looked.detector_brands:
        return looked
    logits = fused_brand_logits(
        np.asarray([looked.classifier_brands]), np.asarray([looked.detector_brands]), weight
    )
    return replace(looked, brand=labels[int(logits[0].argmax())])
