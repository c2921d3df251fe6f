"""Temperature scaling, calibration error and the choice of the no-logo threshold."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from monitor.inference.calibration import (
    choose_threshold,
    confidence_attainable,
    expected_calibration_error,
    fit_box_scale,
    fit_temperature,
    negative_log_likelihood,
    softmax_calibration_error,
    threshold_report,
    wilson_upper_limit,
)
from monitor.inference.windows import scaled_box, softmax


def _calibrated_sample(count: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from those very logits: calibrated at temperature 1."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, (count, classes))
    probabilities = softmax(logits)
    labels = np.array([rng.choice(classes, p=row) for row in probabilities])
    return logits, labels


def test_fit_temperature_undoes_overconfidence() -> None:
    logits, labels = _calibrated_sample(4000, 5, seed=0)
    assert fit_temperature(logits * 3.0, labels) == pytest.approx(3.0, rel=0.1)
    assert fit_temperature(logits, labels) == pytest.approx(1.0, rel=0.1)


def test_fitted_temperature_lowers_nll_and_ece() -> None:
    logits, labels = _calibrated_sample(3000, 4, seed=1)
    overconfident = logits * 4.0
    temperature = fit_temperature(overconfident, labels)
    assert negative_log_likelihood(overconfident, labels, temperature) < negative_log_likelihood(
        overconfident, labels, 1.0
    )
    before = softmax_calibration_error(overconfident, labels, 1.0)
    after = softmax_calibration_error(overconfident, labels, temperature)
    assert after < before / 2


def test_fit_temperature_needs_samples() -> None:
    with pytest.raises(ValueError, match="without validation samples"):
        fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int))


def test_ece_by_hand() -> None:
    # bin 0.9: accuracy 0.5, gap 0.4, half the answers; bin 0.6: accuracy 1.0, gap 0.4, half.
    confidences = np.array([0.9, 0.9, 0.6, 0.6])
    correct = np.array([True, False, True, True])
    assert expected_calibration_error(confidences, correct, bins=10) == pytest.approx(0.4)


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    confidences = np.array([0.75] * 4 + [1.0] * 3)
    correct = np.array([True, True, True, False, True, True, True])
    assert expected_calibration_error(confidences, correct) == pytest.approx(0.0)


def test_ece_needs_answers() -> None:
    with pytest.raises(ValueError, match="without answers"):
        expected_calibration_error(np.array([]), np.array([]))


def test_threshold_separates_logos_from_logo_free_pictures() -> None:
    choice = choose_threshold(
        logo_scores=[0.9, 0.8, 0.7, 0.4],
        logo_correct=[True, True, False, True],
        no_logo_scores=[0.1, 0.2, 0.3, 0.5],
        max_false_positive_rate=0.0,
    )
    # above 0.5 no logo-free picture is named; between 0.5 and 0.7 the two right logos count.
    assert 0.5 < choice.threshold <= 0.7
    assert choice.false_positive_rate == 0.0
    assert choice.brand_accuracy == 0.5
    assert choice.accuracy == pytest.approx(6 / 8)


def test_threshold_trades_accuracy_for_the_allowed_false_positives() -> None:
    logos: dict[str, Any] = {"logo_scores": [0.9, 0.45, 0.44], "logo_correct": [True, True, True]}
    strict = choose_threshold(**logos, no_logo_scores=[0.5, 0.1], max_false_positive_rate=0.0)
    loose = choose_threshold(**logos, no_logo_scores=[0.5, 0.1], max_false_positive_rate=0.5)
    assert strict.threshold > 0.5 and strict.false_positive_rate == 0.0
    assert strict.accuracy == pytest.approx((1 / 3 + 1) / 2)
    assert 0.1 < loose.threshold <= 0.44 and loose.false_positive_rate == 0.5
    assert loose.accuracy == pytest.approx((1 + 0.5) / 2)


def test_accuracy_weighs_logo_and_logo_free_pictures_equally() -> None:
    choice = choose_threshold(
        logo_scores=[0.9, 0.2],
        logo_correct=[True, True],
        no_logo_scores=[0.1] * 8,
        max_false_positive_rate=0.0,
    )
    assert choice.threshold <= 0.2
    assert choice.accuracy == pytest.approx(1.0)
    assert choice.brand_accuracy == pytest.approx(1.0)


def test_equal_accuracy_prefers_fewer_false_positives() -> None:
    choice = choose_threshold(
        logo_scores=[0.9, 0.45],
        logo_correct=[True, True],
        no_logo_scores=[0.5, 0.1],
        max_false_positive_rate=0.5,
    )
    assert 0.5 < choice.threshold <= 0.9 and choice.false_positive_rate == 0.0


def test_when_no_threshold_is_allowed_the_highest_is_taken() -> None:
    choice = choose_threshold(
        logo_scores=[0.5], logo_correct=[True], no_logo_scores=[0.99], max_false_positive_rate=0.0
    )
    assert choice.threshold > 0.99


def test_threshold_without_logo_free_pictures_names_every_logo() -> None:
    choice = choose_threshold(
        logo_scores=[0.9, 0.3],
        logo_correct=[True, True],
        no_logo_scores=[],
        max_false_positive_rate=0.0,
    )
    assert choice.threshold <= 0.3 and choice.accuracy == 1.0


def test_threshold_input_is_checked() -> None:
    with pytest.raises(ValueError, match="same length"):
        choose_threshold(
            logo_scores=[0.5], logo_correct=[], no_logo_scores=[], max_false_positive_rate=0.1
        )
    with pytest.raises(ValueError, match="without validation pictures"):
        choose_threshold(
            logo_scores=[], logo_correct=[], no_logo_scores=[], max_false_positive_rate=0.1
        )


def test_wilson_upper_limit_lies_above_the_rate_seen_and_narrows_with_more_pictures() -> None:
    assert wilson_upper_limit(6, 324, 0.0) == pytest.approx(6 / 324)
    # Wilson's bound at 90%: z = 1.2816, centre and spread as in the textbook formula.
    z = 1.2815516
    rate, trials = 6 / 324, 324
    expected = (
        rate
        + z * z / (2 * trials)
        + z * np.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials**2))
    ) / (1 + z * z / trials)
    assert wilson_upper_limit(6, 324, 0.9) == pytest.approx(expected, rel=1e-6)
    assert wilson_upper_limit(6, 324, 0.9) > 6 / 324
    assert wilson_upper_limit(60, 3240, 0.9) < wilson_upper_limit(6, 324, 0.9)
    assert wilson_upper_limit(6, 324, 0.95) > wilson_upper_limit(6, 324, 0.9)
    assert 0 < wilson_upper_limit(0, 100, 0.9) < 0.03


def test_confidence_keeps_the_threshold_where_the_rate_is_proven_low() -> None:
    # 400 logo-free pictures: 8 score 0.6, the rest 0.1. A rate of 2% is within 3% as seen,
    # but its 90% upper limit (3.1%) is not: the threshold must stay above 0.6.
    negatives = [0.6] * 8 + [0.1] * 392
    logos: dict[str, Any] = {"logo_scores": [0.9] * 50 + [0.5] * 50, "logo_correct": [True] * 100}
    seen = choose_threshold(**logos, no_logo_scores=negatives, max_false_positive_rate=0.03)
    sure = choose_threshold(
        **logos, no_logo_scores=negatives, max_false_positive_rate=0.03, confidence=0.9
    )
    assert seen.threshold <= 0.5 and seen.false_positive_rate == pytest.approx(0.02)
    assert seen.false_positive_upper_limit == pytest.approx(0.02)
    assert wilson_upper_limit(8, 400, 0.9) > 0.03
    assert sure.threshold > 0.6 and sure.false_positive_rate == 0.0
    assert sure.brand_accuracy == pytest.approx(0.5)
    assert sure.false_positive_upper_limit == pytest.approx(wilson_upper_limit(0, 400, 0.9))


def test_too_few_logo_free_pictures_for_the_confidence_keep_to_the_rate_seen() -> None:
    assert not confidence_attainable(20, 0.03, 0.9)
    assert confidence_attainable(400, 0.03, 0.9)
    logos: dict[str, Any] = {"logo_scores": [0.9, 0.5], "logo_correct": [True, True]}
    negatives = [0.1] * 20
    plain = choose_threshold(**logos, no_logo_scores=negatives, max_false_positive_rate=0.03)
    sure = choose_threshold(
        **logos, no_logo_scores=negatives, max_false_positive_rate=0.03, confidence=0.9
    )
    assert sure.threshold == plain.threshold and sure.brand_accuracy == 1.0
    with pytest.raises(ValueError, match="confidence"):
        choose_threshold(
            **logos, no_logo_scores=negatives, max_false_positive_rate=0.03, confidence=1.0
        )


def test_threshold_report_shows_what_the_confidence_cost() -> None:
    report = threshold_report(
        logo_scores=[0.9] * 50 + [0.5] * 50,
        logo_correct=[True] * 100,
        no_logo_scores=[0.6] * 8 + [0.1] * 392,
        max_false_positive_rate=0.03,
        confidence=0.9,
    )
    assert float(report["value"]) > 0.6  # type: ignore[arg-type]
    assert report["validation_brand_accuracy"] == 0.5
    assert report["validation_no_logo_pictures"] == 400
    assert report["false_positive_confidence"] == 0.9
    plain = report["without_confidence"]
    assert isinstance(plain, dict) and plain["validation_brand_accuracy"] == 1.0
    assert plain["validation_false_positive_rate"] == 0.02
    few = threshold_report(
        logo_scores=[0.9],
        logo_correct=[True],
        no_logo_scores=[0.1] * 20,
        max_false_positive_rate=0.03,
        confidence=0.9,
    )
    assert few["false_positive_confidence"] == 0.0 and "without_confidence" not in few


def test_platt_scaling_makes_overconfident_scores_honest() -> None:
    from monitor.inference.calibration import fit_platt, platt_scaled

    rng = np.random.default_rng(0)
    scores = rng.uniform(0.05, 0.95, size=4000)
    # right far less often than the score says: a half of the score's odds
    truth_probability = scores / (scores + 2 * (1 - scores))
    correct = rng.random(4000) < truth_probability
    calibration = fit_platt(scores, correct)
    calibrated = platt_scaled(scores, calibration)
    before = expected_calibration_error(scores, correct)
    after = expected_calibration_error(calibrated, correct)
    assert after < before / 3
    assert calibration[1] == pytest.approx(np.log(0.5), abs=0.15)


def test_platt_scaling_needs_both_kinds_of_answer() -> None:
    from monitor.inference.calibration import fit_platt

    assert fit_platt(np.array([0.2, 0.9]), np.array([True, True])) == (1.0, 0.0)
    assert fit_platt(np.array([]), np.array([], dtype=bool)) == (1.0, 0.0)


def test_the_box_scale_undoes_boxes_drawn_too_small() -> None:
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(60):
        x, y, side = rng.uniform(50, 300), rng.uniform(50, 300), rng.uniform(30, 120)
        truth = (int(x), int(y), int(x + side), int(y + side))
        shrunk = scaled_box(truth, 1 / 1.45, (1000, 1000))  # every side a third too short
        pairs.append((shrunk, truth, (1000, 1000)))
    choice = fit_box_scale(pairs)
    assert choice.scale == pytest.approx(1.45, abs=0.05)
    assert choice.iou50_share == 1.0 and choice.iou50_share_before < 1.0
    assert choice.logos == 60


def test_without_validation_logos_boxes_stay_as_read() -> None:
    assert fit_box_scale([]).scale == 1.0
