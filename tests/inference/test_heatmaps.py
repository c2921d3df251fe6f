"""The detector's targets from boxes and its detections from output maps (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.inference.heatmaps import (
    STRIDE,
    TargetBox,
    box_at,
    cell_brand_probabilities,
    find_peaks,
    grid_side,
    make_targets,
)


def test_a_logo_peaks_at_its_centre_cell_and_fades_around_it() -> None:
    targets = make_targets([TargetBox(box=(40.0, 80.0, 120.0, 120.0), label=1)], input_size=256)
    side = grid_side(256)
    assert targets.objectness.shape == (side, side)
    row, column = int(100 // STRIDE), int(80 // STRIDE)
    assert targets.objectness[row, column] == 1.0
    assert np.count_nonzero(targets.objectness == 1.0) == 1
    assert 0 < targets.objectness[row, column + 2] < targets.objectness[row, column + 1] < 1
    # wider than high: the Gaussian spreads further along x than along y
    assert targets.objectness[row, column + 3] > targets.objectness[row + 3, column]
    # the brand is learnt on the cells near the centre
    assert targets.label_map[row, column] == 1


def test_box_weights_sum_to_one_per_logo_and_targets_hold_its_corners() -> None:
    boxes = [
        TargetBox(box=(0.0, 0.0, 64.0, 64.0), label=0),
        TargetBox(box=(150.0, 150.0, 250.0, 200.0), label=2),
    ]
    targets = make_targets(boxes, input_size=256)
    assert targets.box_weight.sum() == pytest.approx(2.0, rel=1e-5)
    row, column = int(175 // STRIDE), int(200 // STRIDE)
    assert targets.box_target[row, column] == pytest.approx(np.array([150, 150, 250, 200]) / STRIDE)


def test_a_logo_whose_extent_is_not_known_trains_its_brand_and_not_its_box() -> None:
    boxes = [
        TargetBox(box=(0.0, 0.0, 64.0, 64.0), label=0),
        TargetBox(box=(150.0, 150.0, 250.0, 200.0), label=2, extent_known=False),
    ]
    targets = make_targets(boxes, input_size=256)
    known, unknown = np.s_[:10, :10], np.s_[15:, 15:]
    assert targets.box_weight[known].sum() == pytest.approx(1.0, rel=1e-5)
    assert targets.box_weight[unknown].sum() == 0.0
    assert targets.brand_weight.sum() == pytest.approx(2.0, rel=1e-5)
    np.testing.assert_array_equal(targets.brand_weight[known], targets.box_weight[known])
    row, column = int(175 // STRIDE), int(200 // STRIDE)
    assert targets.label_map[row, column] == 2 and targets.objectness[row, column] == 1.0


def test_ignored_regions_are_neither_logo_nor_background() -> None:
    targets = make_targets([], ignored=[(0.0, 0.0, 40.0, 40.0)], input_size=128)
    assert targets.objectness.max() == 0.0
    assert targets.heatmap_weight[0, 0] == 0.0
    assert targets.heatmap_weight[10, 10] == 1.0
    assert targets.box_weight.sum() == 0.0


def test_a_tiny_logo_still_has_a_centre_cell() -> None:
    targets = make_targets([TargetBox(box=(9.0, 9.0, 12.0, 12.0), label=0)], input_size=64)
    assert targets.objectness[1, 1] == 1.0
    assert targets.box_weight.sum() == pytest.approx(1.0)


def test_peaks_are_local_maxima_above_the_floor_highest_first() -> None:
    heatmap = np.zeros((8, 8, 2), dtype=np.float32)
    heatmap[2, 2, 0], heatmap[2, 3, 0] = 0.9, 0.6  # one logo lighting two cells
    heatmap[6, 6, 1] = 0.7
    heatmap[0, 7, 1] = 0.01  # below the floor
    boxes = np.zeros((8, 8, 4), dtype=np.float32)
    peaks = find_peaks(heatmap, boxes, floor=0.05, limit=10)
    assert [(peak.label, round(peak.score, 2)) for peak in peaks] == [(0, 0.9), (1, 0.7)]
    assert len(find_peaks(heatmap, boxes, floor=0.05, limit=1)) == 1


def test_a_peak_carries_the_brand_softmax_of_its_cell() -> None:
    heatmap = np.zeros((4, 4, 3), dtype=np.float32)
    heatmap[1, 1] = 0.8 * np.array([0.1, 0.6, 0.3])  # objectness 0.8 times the brand softmax
    (peak, *_) = find_peaks(heatmap, np.zeros((4, 4, 4), np.float32), floor=0.05, limit=1)
    assert peak.label == 1
    assert peak.brand_probabilities == pytest.approx((0.1, 0.6, 0.3))
    assert cell_brand_probabilities(np.zeros(4)) == (0.25, 0.25, 0.25, 0.25)


def test_the_box_is_read_as_log_distances_from_the_cell_centre() -> None:
    boxes = np.zeros((4, 4, 4), dtype=np.float32)
    boxes[1, 2] = np.log([1.0, 2.0, 0.5, 1.0])
    x1, y1, x2, y2 = box_at(boxes, 1, 2)
    centre_x, centre_y = 2.5 * STRIDE, 1.5 * STRIDE
    assert (x1, y1, x2, y2) == pytest.approx(
        (centre_x - STRIDE, centre_y - 2 * STRIDE, centre_x + STRIDE / 2, centre_y + STRIDE)
    )


def test_the_brand_is_taught_where_the_box_is() -> None:
    boxes = [
        TargetBox(box=(0.0, 0.0, 128.0, 128.0), label=0),
        TargetBox(box=(40.0, 40.0, 72.0, 72.0), label=2),
    ]
    targets = make_targets(boxes, input_size=128)
    small_centre = (int(56 // STRIDE), int(56 // STRIDE))
    assert targets.label_map[small_centre] == 2  # the smaller logo wins where both are
    assert targets.label_map[1, 1] == 0
    assert set(np.unique(targets.label_map[targets.box_weight > 0])) == {0, 2}
