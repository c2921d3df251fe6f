"""The detector's second look: its windows, its score combination, its model directory."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from monitor.exceptions import ModelError
from monitor.inference.calibration import fit_logistic
from monitor.inference.classifier import load_classifier
from monitor.inference.detection import LogoDetector, combined_candidates
from monitor.inference.model_dir import METADATA_FILE, VERIFIER_FILE, read_metadata
from monitor.inference.tiny import write_tiny_detector
from monitor.inference.verification import (
    BRAND_FUSION_LIMIT,
    FEATURES,
    IDENTITY_COMBINATION,
    LookedAgain,
    VerifierSettings,
    candidate_features,
    combined_probability,
    fit_brand_fusion,
    fused_brand_logits,
    score_logit,
    verification_window,
    with_fused_brand,
)
from tests.inference.conftest import TINY_LABELS, make_picture

TINY_VERIFIER = VerifierSettings(input_size=32, context=1.6, candidates=2, min_side=8)


def test_the_window_is_a_square_around_the_box_with_context() -> None:
    window = verification_window((100, 100, 150, 120), (640, 480), context=1.6, min_side=32)
    left, top, right, bottom = window
    assert right - left == bottom - top == 80  # 1.6 x the longer side, 50
    assert (left + right) / 2 == 125 and (top + bottom) / 2 == 110


def test_the_window_moves_inside_the_photo_rather_than_shrink() -> None:
    assert verification_window((0, 0, 40, 40), (300, 200), context=2.0, min_side=8) == (
        0,
        0,
        80,
        80,
    )
    assert verification_window((280, 180, 300, 200), (300, 200), context=2.0, min_side=8) == (
        260,
        160,
        300,
        200,
    )


def test_a_tiny_box_gets_the_smallest_window_and_a_huge_one_the_photo() -> None:
    assert verification_window((50, 50, 52, 52), (200, 200), context=1.6, min_side=32) == (
        35,
        35,
        67,
        67,
    )
    assert verification_window((0, 0, 190, 90), (200, 100), context=1.6, min_side=32) == (
        0,
        0,
        200,
        100,
    )


def _looked(detector_score: float, logo: float) -> LookedAgain:
    return LookedAgain(
        box=(0, 0, 10, 10), detector_score=detector_score, brand="acme", logo_probability=logo
    )


def test_the_identity_combination_is_the_classifier_probability() -> None:
    looked = [_looked(0.8, 0.01), _looked(0.1, 0.3), _looked(0.5, 0.9)]
    features = candidate_features(looked)
    assert features.shape == (3, len(FEATURES))
    logo = np.array([0.01, 0.3, 0.9])
    assert np.allclose(combined_probability(features, IDENTITY_COMBINATION), logo)
    weighted = combined_probability(features, (1.0, 1.0, 0.0))
    assert weighted[0] > logo[0] and weighted[1] < logo[1]  # the detector pulls each its way
    assert candidate_features([]).shape == (0, len(FEATURES))


def test_a_logistic_fit_recovers_the_weights_that_made_the_outcomes() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(0, 2, size=(4000, 2))
    truth = np.array([0.5, 2.0, -1.0])
    probability = 1 / (1 + np.exp(-(features @ truth[:2] + truth[2])))
    outcomes = rng.random(4000) < probability
    fitted = fit_logistic(features, outcomes, prior=(0.0, 1.0, 0.0))
    assert np.allclose(fitted, truth, atol=0.2)
    assert fit_logistic(features, np.ones(4000, bool), prior=(0.0, 1.0, 0.0)) == (0.0, 1.0, 0.0)


def _brand_votes(rng: np.random.Generator, truth: np.ndarray, *, brands: int) -> np.ndarray:
    """A network's brand probabilities: a softmax of noisy logits leaning to the true brand."""
    logits = rng.normal(0.0, 1.5, size=(len(truth), brands))
    logits[np.arange(len(truth)), truth] += 2.0
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def test_the_brand_fusion_weighs_an_informative_detector_and_ignores_noise() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 5, 600)
    classifier = _brand_votes(rng, truth, brands=5)
    detector = _brand_votes(rng, truth, brands=5)
    weight = fit_brand_fusion(classifier, detector, truth)
    assert 0.3 <= weight <= 2.0
    alone = (classifier.argmax(axis=1) == truth).mean()
    fused = (fused_brand_logits(classifier, detector, weight).argmax(axis=1) == truth).mean()
    assert fused > alone + 0.05
    noise = rng.dirichlet(np.ones(5), size=len(truth))
    assert fit_brand_fusion(classifier, noise, truth) <= 0.1
    assert fit_brand_fusion(np.zeros((0, 5)), np.zeros((0, 5)), np.zeros(0)) == 0.0


def test_the_fused_brand_is_the_one_both_networks_favour() -> None:
    looked = LookedAgain(
        box=(0, 0, 10, 10),
        detector_score=0.5,
        brand="acme",
        logo_probability=0.9,
        classifier_brands=(0.45, 0.40, 0.15),
        detector_brands=(0.10, 0.80, 0.10),
    )
    labels = ["acme", "bolt", "cola"]
    assert with_fused_brand(looked, labels, 0.0).brand == "acme"
    assert with_fused_brand(looked, labels, 1.0).brand == "bolt"
    # without the detector's probabilities (a model written before them) the brand stays
    bare = replace(looked, detector_brands=())
    assert with_fused_brand(bare, labels, 1.0) == bare


def test_score_logits_stay_finite_at_certain_scores() -> None:
    assert np.isfinite(score_logit([0.0, 1.0])).all()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="context"):
        VerifierSettings(context=0.5)
    with pytest.raises(ValueError, match="temperature"):
        VerifierSettings(temperature=0.0)
    with pytest.raises(ValueError, match="brand_fusion"):
        VerifierSettings(brand_fusion=-1.0)


@pytest.fixture(scope="module")
def verified_detector_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_detector(
        tmp_path_factory.mktemp("verified") / "model",
        labels=TINY_LABELS,
        seed=3,
        threshold=0.0,
        verifier=TINY_VERIFIER,
    )


def test_a_detector_with_a_verifier_round_trips_its_settings(verified_detector_dir: Path) -> None:
    assert read_metadata(verified_detector_dir).verifier == TINY_VERIFIER
    detector = load_classifier(verified_detector_dir, runtime="keras")
    assert isinstance(detector, LogoDetector) and detector.metadata.verifier == TINY_VERIFIER


def test_the_verifier_names_the_brand_and_gives_the_probability(
    verified_detector_dir: Path,
) -> None:
    detector = load_classifier(verified_detector_dir, runtime="keras")
    assert isinstance(detector, LogoDetector)
    pictures = [make_picture(160, 120, seed) for seed in range(6)] + [make_picture(40, 300, 9)]
    analysed = detector.analyse(pictures)
    for picture, candidates in zip(pictures, analysed, strict=True):
        # at most the verified candidates, each one of them, with the classifier's answer
        assert len(candidates.detections) <= len(candidates.looked_again) <= 2
        looked = {item.box: item for item in candidates.looked_again}
        for item in candidates.looked_again:
            assert len(item.classifier_brands) == len(item.detector_brands) == len(TINY_LABELS)
            assert sum(item.classifier_brands) == pytest.approx(1.0)
            assert sum(item.detector_brands) == pytest.approx(1.0)
            # at weight 0 the classifier names the brand
            assert item.brand == TINY_LABELS[int(np.argmax(item.classifier_brands))]
        for detection in candidates.detections:
            assert detection.box is not None
            item = looked[detection.box]
            assert detection.brand == item.brand
            assert detection.probability == pytest.approx(item.logo_probability)
            x1, y1, x2, y2 = detection.box
            assert 0 <= x1 < x2 <= picture.size[0] and 0 <= y1 < y2 <= picture.size[1]
    assert any(candidates.detections for candidates in analysed)
    assert detector.classify(pictures) == [c.detections for c in analysed]


def test_the_combination_and_threshold_decide_what_is_kept(verified_detector_dir: Path) -> None:
    detector = load_classifier(verified_detector_dir, runtime="keras")
    assert isinstance(detector, LogoDetector)
    picture = make_picture(160, 120, 1)
    (candidates,) = detector.analyse([picture])
    strict = replace(
        detector.metadata,
        verifier=replace(TINY_VERIFIER, combination=(0.0, 1.0, -30.0)),
        no_logo_threshold=0.5,
    )
    silenced = LogoDetector(metadata=strict, predict=detector._predict, verify=detector._verify)
    assert strict.verifier is not None
    recombined = combined_candidates(
        candidates.looked_again, strict.verifier, nms_iou=strict.inference.nms_iou
    )
    assert recombined.looked_again == candidates.looked_again
    assert silenced.classify([picture]) == [[]]


def test_without_the_second_look_a_detector_gives_its_own_candidates(
    verified_detector_dir: Path,
) -> None:
    detector = load_classifier(verified_detector_dir, runtime="keras")
    assert isinstance(detector, LogoDetector)
    own = detector.without_second_look()
    assert own.metadata.verifier is None and detector.metadata.verifier == TINY_VERIFIER
    pictures = [make_picture(160, 120, seed) for seed in range(6)]
    compared = 0
    for looked, candidates in zip(detector.analyse(pictures), own.analyse(pictures), strict=True):
        assert candidates.looked_again == ()
        # the second look starts from the detector's best candidate
        if looked.looked_again:
            assert looked.looked_again[0].box == candidates.detections[0].box
            compared += 1
    assert compared > 0


def test_a_missing_verifier_file_is_a_clear_error(
    verified_detector_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "model"
    broken.mkdir()
    for item in verified_detector_dir.iterdir():
        if item.name != VERIFIER_FILE:
            (broken / item.name).write_bytes(item.read_bytes())
    with pytest.raises(ModelError, match=r"verifier\.keras is missing"):
        load_classifier(broken, runtime="keras")


def test_bad_verifier_metadata_is_a_clear_error(
    verified_detector_dir: Path, tmp_path: Path
) -> None:
    data = json.loads((verified_detector_dir / METADATA_FILE).read_text())
    data["verifier"]["context"] = 0.2
    (tmp_path / METADATA_FILE).write_text(json.dumps(data))
    with pytest.raises(ModelError, match="invalid verifier settings"):
        read_metadata(tmp_path)


def test_a_verifier_written_before_the_brand_fusion_names_the_classifier_brand(
    verified_detector_dir: Path, tmp_path: Path
) -> None:
    data = json.loads((verified_detector_dir / METADATA_FILE).read_text())
    del data["verifier"]["brand_fusion"]
    (tmp_path / METADATA_FILE).write_text(json.dumps(data))
    verifier = read_metadata(tmp_path).verifier
    assert verifier is not None and verifier.brand_fusion == 0.0


def test_a_fitted_brand_fusion_names_the_brand_both_networks_favour(
    verified_detector_dir: Path,
) -> None:
    detector = load_classifier(verified_detector_dir, runtime="keras")
    assert isinstance(detector, LogoDetector)
    fused = LogoDetector(
        metadata=replace(
            detector.metadata, verifier=replace(TINY_VERIFIER, brand_fusion=BRAND_FUSION_LIMIT)
        ),
        predict=detector._predict,
        verify=detector._verify,
    )
    pictures = [make_picture(160, 120, seed) for seed in range(12)]
    analysed = fused.analyse(pictures)
    looked = [item for found in analysed for item in found.looked_again]
    assert looked
    for item in looked:
        logits = fused_brand_logits(
            np.array([item.classifier_brands]), np.array([item.detector_brands]), BRAND_FUSION_LIMIT
        )
        assert item.brand == TINY_LABELS[int(logits.argmax())]
    # what classify answers (as monitor classify and the workers read it) is the fused brand,
    # and for some detections it is not the one the classifier alone would name
    answered = fused.classify(pictures, threshold=0.0)
    changed = 0
    for detections, found in zip(answered, analysed, strict=True):
        by_box = {item.box: item for item in found.looked_again}
        assert [d.brand for d in detections] == [by_box[d.box].brand for d in detections]
        changed += sum(
            d.brand != TINY_LABELS[int(np.argmax(by_box[d.box].classifier_brands))]
            for d in detections
        )
    assert changed > 0
