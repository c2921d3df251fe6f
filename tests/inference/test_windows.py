"""Windows over a photo, boxes mapped back to it, and the merging of detections."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.domain import Detection
from monitor.inference.windows import (
    best_brand,
    box_in_window,
    class_probabilities,
    closed_set_detection,
    grid_windows,
    iou,
    non_maximum_suppression,
    overlap_of_smaller,
    scaled_box,
    softmax,
    window_detections,
)


def test_whole_photo_comes_first_and_grids_cover_the_photo() -> None:
    windows = grid_windows(400, 300, grids=(1, 2, 3), overlap=0.25, min_window_side=10)
    assert windows[0] == (0, 0, 400, 300)
    assert len(windows) == 1 + 4 + 9
    for window in windows:
        assert 0 <= window[0] < window[2] <= 400
        assert 0 <= window[1] < window[3] <= 300
    two_by_two = windows[1:5]
    assert {window[0] for window in two_by_two} == {0, 171}
    assert max(window[2] for window in two_by_two) == 400
    assert max(window[3] for window in two_by_two) == 300


def test_neighbouring_windows_overlap_by_the_asked_share() -> None:
    windows = grid_windows(700, 700, grids=(2,), overlap=0.25, min_window_side=10)
    left, right = windows[1], windows[2]
    width = left[2] - left[0]
    shared = left[2] - right[0]
    assert shared == pytest.approx(0.25 * width, abs=1)


def test_small_photos_skip_grids_with_too_small_windows() -> None:
    windows = grid_windows(100, 80, grids=(1, 2, 3), overlap=0.25, min_window_side=40)
    assert len(windows) == 1 + 4  # the 3-grid windows would be 40 x 32


def test_empty_photo_is_refused() -> None:
    with pytest.raises(ValueError, match="no pixels"):
        grid_windows(0, 10, grids=(1,), overlap=0.0, min_window_side=1)


def test_box_fractions_map_to_window_pixels_in_order() -> None:
    assert box_in_window([0.5, 0.25, 0.0, 1.0], (100, 200, 300, 400)) == (100, 250, 200, 400)


def test_degenerate_box_becomes_one_pixel_inside_the_window() -> None:
    box = box_in_window([1.0, 1.0, 1.0, 1.0], (0, 0, 50, 40))
    assert box == (49, 39, 50, 40)


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (10, 10, 20, 20)) == 0.0


def test_nms_keeps_the_most_probable_of_overlapping_same_brand_boxes() -> None:
    detections = [
        Detection("acme", 0.7, (0, 0, 100, 100)),
        Detection("acme", 0.9, (10, 10, 110, 110)),
        Detection("acme", 0.6, (300, 300, 350, 350)),
        Detection("globex", 0.8, (0, 0, 100, 100)),
        Detection("acme", 0.5, (20, 20, 60, 60)),  # inside the first: the same logo
    ]
    kept = non_maximum_suppression(detections, iou_threshold=0.5)
    assert kept == [
        Detection("acme", 0.9, (10, 10, 110, 110)),
        Detection("globex", 0.8, (0, 0, 100, 100)),
        Detection("acme", 0.6, (300, 300, 350, 350)),
    ]


def test_nms_merges_a_boxless_detection_with_its_brand() -> None:
    detections = [Detection("acme", 0.4, None), Detection("acme", 0.6, (0, 0, 5, 5))]
    assert non_maximum_suppression(detections, iou_threshold=0.5) == [detections[1]]


def test_a_window_is_a_detection_when_it_probably_shows_a_logo_whatever_the_brand() -> None:
    probabilities = np.array(
        [[0.1, 0.7, 0.2], [0.3, 0.2, 0.5], [0.05, 0.05, 0.9], [0.46, 0.48, 0.06]]
    )
    boxes = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]] * 2)[:4]
    windows = [(0, 0, 100, 100), (100, 0, 200, 100), (0, 0, 200, 100), (0, 0, 100, 100)]
    found = window_detections(probabilities, boxes, windows, labels=["a", "b"], threshold=0.5)
    # logo probabilities 0.8, 0.5, 0.1, 0.94: the brand split 0.46/0.48 is still a clear logo,
    # and the probability reported is the logo probability the decision was made on
    assert [(found.brand, found.box) for found in found] == [
        ("b", (0, 0, 50, 50)),
        ("a", (150, 50, 200, 100)),
        ("b", (0, 0, 50, 50)),
    ]
    assert [detection.probability for detection in found] == pytest.approx([0.8, 0.5, 0.94])
    assert all(detection.probability >= 0.5 for detection in found)


def test_a_closed_set_model_names_its_most_probable_class_once() -> None:
    # the "no logo" column (last) is left out: among the classes, window 1 says b at 0.9
    probabilities = np.array([[0.3, 0.1, 0.6], [0.01, 0.09, 0.9], [0.5, 0.4, 0.1]])
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0]])
    windows = [(0, 0, 200, 100), (100, 0, 200, 100), (0, 0, 100, 100)]
    (found,) = closed_set_detection(probabilities, boxes, windows, labels=["a", "b"])
    assert found.brand == "b"
    assert found.probability == pytest.approx(0.9)
    assert found.box == (100, 0, 150, 50)
    assert closed_set_detection(np.zeros((0, 3)), np.zeros((0, 4)), [], labels=["a", "b"]) == []


def test_class_probabilities_leave_out_no_logo_and_sum_to_one() -> None:
    among = class_probabilities(np.array([[0.2, 0.2, 0.6], [0.0, 0.0, 1.0]]), 2)
    assert among.tolist() == [[0.5, 0.5], [0.0, 0.0]]


def test_best_brand_is_the_most_logo_like_window_and_its_brand() -> None:
    probabilities = np.array([[0.0, 0.7, 0.3], [0.46, 0.48, 0.06], [0.1, 0.1, 0.8]])
    score, brand = best_brand(probabilities, ["a", "b"])
    assert score == pytest.approx(0.94) and brand == "b"


def test_softmax_rows_sum_to_one_and_temperature_flattens() -> None:
    logits = np.array([[2.0, 0.0, -1.0], [1000.0, 0.0, 0.0]])
    sharp = softmax(logits)
    flat = softmax(logits, temperature=4.0)
    assert np.allclose(sharp.sum(axis=1), 1.0)
    assert flat[0, 0] < sharp[0, 0]
    assert sharp[1, 0] == pytest.approx(1.0)


def test_a_scaled_box_keeps_its_centre_and_stays_in_the_photo() -> None:
    assert scaled_box((40, 40, 60, 80), 2.0, (200, 200)) == (30, 20, 70, 100)
    assert scaled_box((0, 0, 20, 20), 2.0, (30, 30)) == (0, 0, 30, 30)
    assert scaled_box((40, 40, 60, 80), 1.0, (200, 200)) == (40, 40, 60, 80)
    assert scaled_box((10, 10, 11, 11), 0.5, (50, 50)) == (10, 10, 11, 11)  # never empty


def test_overlap_of_smaller_is_one_for_a_box_inside_another() -> None:
    assert overlap_of_smaller((0, 0, 100, 100), (10, 10, 30, 30)) == 1.0
    assert overlap_of_smaller((0, 0, 10, 10), (5, 0, 15, 10)) == 0.5
    assert overlap_of_smaller((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
