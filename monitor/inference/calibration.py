"""Calibration and the "no logo" decision, chosen on validation data (NumPy only).

* **Temperature scaling** divides the logits by one number fitted to minimise the negative log
  likelihood of the validation answers, so that "90% sure" is right about 90% of the time.
* **Expected calibration error (ECE)** measures how far confidence and accuracy are apart, averaged
  over confidence bins weighted by how many answers fall in each.
* **The no-logo threshold** is the logo probability (1 - P(no logo)) from which a window is said
  to show a logo, named by its most probable brand;
  it is chosen to answer as many validation photos right as possible while giving a brand to at
  most a given share of logo-free pictures. With a ``confidence`` the share is bounded by its
  one-sided Wilson upper limit rather than by the share seen: a few hundred validation pictures
  know a rate of a few percent only to about a point either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from monitor.domain import Box
from monitor.inference.windows import iou, scaled_box, softmax


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log probability of the true labels at ``temperature``."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(scaled).sum(axis=1))
    picked = scaled[np.arange(len(labels)), labels]
    return float(np.mean(log_norm - picked))


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, *, low: float = 0.05, high: float = 20.0
) -> float:
    """The temperature in [low, high] with the lowest validation NLL (golden-section search).

    The NLL is convex in 1/T, hence unimodal in log T: a one-dimensional search is exact enough.
    """
    labels = np.asarray(labels, dtype=int)
    if len(labels) == 0:
        raise ValueError("cannot fit a temperature without validation samples")
    ratio = (np.sqrt(5) - 1) / 2
    left, right = np.log(low), np.log(high)
    for _ in range(80):
        first = right - ratio * (right - left)
        second = left + ratio * (right - left)
        if negative_log_likelihood(logits, labels, float(np.exp(first))) <= negative_log_likelihood(
            logits, labels, float(np.exp(second))
        ):
            right = second
        else:
            left = first
    return float(np.exp((left + right) / 2))


def expected_calibration_error(
    confidences: np.ndarray, correct: np.ndarray, *, bins: int = 15
) -> float:
    """ECE: sum over equal-width confidence bins of |accuracy - confidence| x share of answers."""
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if len(confidences) == 0:
        raise ValueError("cannot compute a calibration error without answers")
    edges = np.linspace(0.0, 1.0, bins + 1)
    indices = np.clip(np.digitize(confidences, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for index in range(bins):
        members = indices == index
        if members.any():
            gap = abs(correct[members].mean() - confidences[members].mean())
            error += gap * members.mean()
    return float(error)


def softmax_calibration_error(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """ECE of the top class of ``softmax(logits / temperature)``."""
    probabilities = softmax(logits, temperature)
    predictions = probabilities.argmax(axis=1)
    return expected_calibration_error(
        probabilities.max(axis=1), predictions == np.asarray(labels, dtype=int)
    )


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold and what it gave on the validation pictures."""

    threshold: float
    accuracy: float
    false_positive_rate: float
    brand_accuracy: float
    false_positive_upper_limit: float = 0.0
    confidence: float = 0.0
    """The confidence the upper limit was taken at (0 where the pictures were too few for it)."""


def wilson_upper_limit(successes: int, trials: int, confidence: float) -> float:
    """One-sided upper confidence limit of a binomial rate (Wilson score interval).

    ``confidence`` 0 gives the observed rate itself. Wilson's interval keeps its coverage near the
    stated level for small rates and few trials, where the normal approximation would give zero
    width at zero successes.
    """
    if trials <= 0:
        return 0.0
    rate = successes / trials
    if confidence <= 0:
        return rate
    z = NormalDist().inv_cdf(confidence)
    spread = z * np.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials))
    return float(min(1.0, (rate + z * z / (2 * trials) + spread) / (1 + z * z / trials)))


def confidence_attainable(pictures: int, max_false_positive_rate: float, confidence: float) -> bool:
    """Whether ``pictures`` logo-free pictures, none named, bound the rate at ``confidence``."""
    return wilson_upper_limit(0, pictures, confidence) <= max_false_positive_rate


def choose_threshold(
    *,
    logo_scores: Sequence[float],
    logo_correct: Sequence[bool],
    no_logo_scores: Sequence[float],
    max_false_positive_rate: float,
    confidence: float = 0.0,
) -> ThresholdChoice:
    """The no-logo threshold with the best accuracy whose false-positive rate is allowed.

    ``logo_scores`` are the highest logo probabilities of photos showing a logo and
    ``logo_correct`` whether the brand then named is right; ``no_logo_scores`` the same scores of
    logo-free pictures (more of them make the false-positive rate better known; the accuracy weighs
    both kinds equally). A picture is answered with its brand when its score reaches the threshold.
    Among the thresholds with the best accuracy, those with the fewest false positives are kept, and the
    middle of the widest range of them is taken (a margin both ways). When no threshold keeps the
    false positives low enough, the highest is taken. A ``confidence`` above 0 asks the upper
    limit of the false-positive rate at that confidence (``wilson_upper_limit``), not the rate
    seen, to stay within ``max_false_positive_rate``; where there are too few logo-free pictures
    for even none of them named to prove that (``confidence_attainable``), the rate seen is used.
    """
    if not 0 <= confidence < 1:
        raise ValueError("confidence must be in [0, 1)")
    logo_array = np.asarray(logo_scores, dtype=np.float64)
    correct = np.asarray(logo_correct, dtype=bool)
    negative = np.asarray(no_logo_scores, dtype=np.float64)
    if len(logo_array) != len(correct):
        raise ValueError("logo_scores and logo_correct must have the same length")
    if len(logo_array) + len(negative) == 0:
        raise ValueError("cannot choose a threshold without validation pictures")
    if not confidence_attainable(len(negative), max_false_positive_rate, confidence):
        confidence = 0.0
    candidates = _candidate_thresholds(np.concatenate([logo_array, negative]))
    results = [_outcome(value, logo_array, correct, negative, confidence) for value in candidates]
    allowed = [result.false_positive_upper_limit <= max_false_positive_rate for result in results]
    if not any(allowed):
        return results[-1]  # the highest threshold: as few false positives as possible
    best = max(result.accuracy for result, ok in zip(results, allowed, strict=True) if ok)
    fewest = min(
        result.false_positive_rate
        for result, ok in zip(results, allowed, strict=True)
        if ok and result.accuracy >= best - 1e-12
    )
    good = [
        ok and result.accuracy >= best - 1e-12 and result.false_positive_rate <= fewest + 1e-12
        for result, ok in zip(results, allowed, strict=True)
    ]
    first, last = _widest_run(good, candidates)
    middle = (candidates[first] + candidates[last]) / 2
    return _outcome(middle, logo_array, correct, negative, confidence)


def threshold_report(
    *,
    logo_scores: Sequence[float],
    logo_correct: Sequence[bool],
    no_logo_scores: Sequence[float],
    max_false_positive_rate: float,
    confidence: float,
) -> dict[str, object]:
    """The chosen threshold as the training report keeps it, with what it gave on validation.

    Beside it stands the threshold the observed rate alone would allow (``without_confidence``),
    so that what the confidence limit costs in brand accuracy can be read off every model.
    """

    def choose(with_confidence: float) -> ThresholdChoice:
        return choose_threshold(
            logo_scores=logo_scores,
            logo_correct=logo_correct,
            no_logo_scores=no_logo_scores,
            max_false_positive_rate=max_false_positive_rate,
            confidence=with_confidence,
        )

    choice = choose(confidence)
    report: dict[str, object] = {
        "value": round(choice.threshold, 6),
        "validation_logo_photos": len(logo_scores),
        "validation_no_logo_pictures": len(no_logo_scores),
        **_validation_outcome(choice),
        "false_positive_confidence": choice.confidence,
        "validation_false_positive_upper_limit": round(choice.false_positive_upper_limit, 4),
    }
    if choice.confidence > 0:
        plain = choose(0.0)
        report["without_confidence"] = {
            "value": round(plain.threshold, 6),
            **_validation_outcome(plain),
        }
    return report


def _validation_outcome(choice: ThresholdChoice) -> dict[str, float]:
    return {
        "validation_accuracy": round(choice.accuracy, 4),
        "validation_brand_accuracy": round(choice.brand_accuracy, 4),
        "validation_false_positive_rate": round(choice.false_positive_rate, 4),
    }


def _widest_run(good: Sequence[bool], values: Sequence[float]) -> tuple[int, int]:
    """First and last index of the run of consecutive good candidates spanning the widest range."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for index, flag in enumerate([*good, False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            runs.append((start, index - 1))
            start = None
    return max(runs, key=lambda run: values[run[1]] - values[run[0]])


def _candidate_thresholds(scores: np.ndarray) -> list[float]:
    """Midpoints between consecutive distinct scores, plus one below and one above them all."""
    distinct = np.unique(np.clip(scores, 0.0, 1.0))
    middles = (distinct[:-1] + distinct[1:]) / 2
    low = max(0.0, float(distinct[0]) - 1e-6)
    high = min(1.0, float(distinct[-1]) + 1e-6)
    return [low, *middles.tolist(), high]


def _outcome(
    threshold: float,
    logo_scores: np.ndarray,
    correct: np.ndarray,
    negative: np.ndarray,
    confidence: float,
) -> ThresholdChoice:
    """Accuracy, false-positive rate and brand accuracy at one threshold.

    The accuracy weighs logo and logo-free pictures equally, as if there were as many of each
    (as in the test sets this recipe is measured on), whatever their numbers in validation.
    """
    named = logo_scores >= threshold
    brand_accuracy = float(np.mean(named & correct)) if len(logo_scores) else None
    false_positives = int(np.sum(negative >= threshold))
    false_positive_rate = false_positives / len(negative) if len(negative) else None
    parts = [value for value in (brand_accuracy, _flip(false_positive_rate)) if value is not None]
    return ThresholdChoice(
        threshold=float(threshold),
        accuracy=sum(parts) / len(parts),
        false_positive_rate=false_positive_rate or 0.0,
        brand_accuracy=brand_accuracy or 0.0,
        false_positive_upper_limit=wilson_upper_limit(false_positives, len(negative), confidence),
        confidence=confidence,
    )


def _flip(rate: float | None) -> float | None:
    return None if rate is None else 1.0 - rate


# --- detector scores -----------------------------------------------------------------------------

SCORE_EPSILON = 1e-6
PLATT_PRIOR = 1.0
"""Strength of the pull of the Platt fit towards the identity (as if one more answer each way)."""


def score_logits(scores: np.ndarray) -> np.ndarray:
    """logit(s) of scores in (0, 1), kept finite at the ends."""
    clipped = np.clip(np.asarray(scores, dtype=np.float64), SCORE_EPSILON, 1 - SCORE_EPSILON)
    return np.log(clipped / (1 - clipped))


def platt_scaled(scores: np.ndarray, calibration: tuple[float, float]) -> np.ndarray:
    """Scores mapped through sigmoid(slope x logit(s) + intercept)."""
    slope, intercept = calibration
    return _sigmoid(slope * score_logits(scores) + intercept)


def _sigmoid(values: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow for large |x|."""
    return 0.5 * (1.0 + np.tanh(np.asarray(values, dtype=np.float64) / 2.0))


def fit_platt(scores: np.ndarray, correct: np.ndarray, *, steps: int = 500) -> tuple[float, float]:
    """(slope, intercept) minimising the log loss of ``correct`` given ``scores`` (Newton steps).

    A detector's raw peak scores are trained by a focal loss, which deliberately does not make them
    probabilities; one logistic fit on validation peaks (right when the brand and box match a logo)
    makes "0.9" mean right nine times in ten. Falls back to the identity when validation has only
    one kind of answer, which no fit can learn from.
    """
    slope, intercept = fit_logistic(
        score_logits(scores)[:, None], correct, prior=(1.0, 0.0), steps=steps
    )
    return (slope, intercept)


def fit_logistic(
    features: np.ndarray,
    correct: np.ndarray,
    *,
    prior: Sequence[float],
    steps: int = 500,
) -> tuple[float, ...]:
    """Weights (one per feature column, then the intercept) of a logistic fit of ``correct``.

    Newton steps on the log loss plus a weak Gaussian pull (``PLATT_PRIOR``) towards ``prior``,
    which is also the answer when validation has only one kind of outcome to learn from.
    """
    labels = np.asarray(correct, dtype=np.float64)
    prior_weights = np.asarray(prior, dtype=np.float64)
    if len(labels) == 0 or labels.min() == labels.max():
        return tuple(float(value) for value in prior_weights)
    design = np.concatenate([np.asarray(features, dtype=np.float64), np.ones((len(labels), 1))], 1)

    def objective(weights: np.ndarray) -> float:
        margins = design @ weights
        # log(1 + e^m) - y m, written so large margins do not overflow
        loss = np.logaddexp(0.0, margins) - labels * margins
        return float(loss.sum() + 0.5 * PLATT_PRIOR * np.sum((weights - prior_weights) ** 2))

    weights = prior_weights.copy()
    identity = np.eye(len(weights))
    current = objective(weights)
    for _ in range(steps):
        predicted = _sigmoid(design @ weights)
        gradient = design.T @ (predicted - labels) + PLATT_PRIOR * (weights - prior_weights)
        hessian = (design * (predicted * (1 - predicted))[:, None]).T @ design
        step = np.linalg.solve(hessian + PLATT_PRIOR * identity, gradient)
        # halve the Newton step until the loss falls: a full step can overshoot from far away
        scale = 1.0
        while scale > 1e-6 and objective(weights - scale * step) > current:
            scale /= 2
        weights = weights - scale * step
        previous, current = current, objective(weights)
        if np.abs(scale * step).max() < 1e-9 or previous - current < 1e-12:
            break
    return tuple(float(value) for value in weights)


# --- detector boxes ------------------------------------------------------------------------------

BOX_SCALES = tuple(round(0.8 + 0.025 * step, 3) for step in range(33))
"""The box scales tried, 0.8 to 1.6."""


@dataclass(frozen=True)
class BoxScaleChoice:
    """The box scale chosen on validation logos, and the share of them it boxes right."""

    scale: float
    iou50_share: float
    iou50_share_before: float
    mean_iou: float
    logos: int


def fit_box_scale(
    pairs: Sequence[tuple[Box, Box, tuple[int, int]]], *, match_iou: float = 0.5
) -> BoxScaleChoice:
    """The factor on box sides that boxes the most validation logos with IoU >= ``match_iou``.

    ``pairs`` are (detected box, annotated box, photo size). Ties go to the higher mean IoU. With
    no pairs the boxes stay as read (scale 1).
    """
    if not pairs:
        return BoxScaleChoice(1.0, 0.0, 0.0, 0.0, 0)

    def outcome(scale: float) -> tuple[float, float]:
        overlaps = [iou(scaled_box(box, scale, size), truth) for box, truth, size in pairs]
        return float(np.mean([value >= match_iou for value in overlaps])), float(np.mean(overlaps))

    results = {scale: outcome(scale) for scale in BOX_SCALES}
    best = max(BOX_SCALES, key=lambda scale: (results[scale], -abs(scale - 1.0)))
    return BoxScaleChoice(
        scale=best,
        iou50_share=round(results[best][0], 4),
        iou50_share_before=round(results[1.0][0], 4),
        mean_iou=round(results[best][1], 4),
        logos=len(pairs),
    )
