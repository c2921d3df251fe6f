"""The detector's output maps: training targets from boxes, and boxes from outputs (no TensorFlow).

The detector (``monitor.inference.detector``) answers on a grid of cells, one per ``STRIDE``
input pixels, in the manner of CenterNet and TTFNet:

* ``heatmap`` (rows, cols, brands): how likely a logo of each brand is centred in each cell, the
  product of an objectness map (a logo of any brand centred here) and a brand softmax per cell.
  The objectness target is an elliptical Gaussian around each logo's centre, shaped like the logo,
  1 at the centre cell; everywhere else is background, so logo-free photos need no class of their
  own. The brand is trained on the cells near a centre (``label_map``).
* ``box`` (rows, cols, 4): from a cell's centre, the log of the distances to the logo's left, top,
  right and bottom sides, in cells. It is trained on every cell near a centre (weighted by the
  Gaussian) with the GIoU loss, so the box read at a peak is well placed even when the peak is a
  cell off.

Reading a detection: the peaks of the heatmap (cells at least as high as their eight neighbours),
the most probable first, each with the box read at that cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STRIDE = 8
"""Input pixels per output cell."""
GAUSSIAN_SHARE = 0.54
"""Gaussian sigma as a share of a sixth of the box side (TTFNet's alpha)."""
REGRESSION_FLOOR = 0.05
"""Cells whose Gaussian value is below this are not trained to regress the box."""
LOG_DISTANCE_LIMIT = 6.0


@dataclass(frozen=True)
class TargetBox:
    """A logo in input pixels and its brand's index.

    ``extent_known=False``: the logo's centre and brand are trained, not its extent (a box drawn
    by another hand than the annotations', whose sides follow another convention).
    """

    box: tuple[float, float, float, float]
    label: int
    extent_known: bool = True


@dataclass(frozen=True)
class Targets:
    """What the detector should answer for one view (see the module docstring).

    ``objectness`` (rows, cols) is the Gaussian target of a logo of any brand centred in a cell.
    ``heatmap_weight`` is 0 on cells of logos the view cut too much to be named fairly (neither a
    logo to find nor background to stay silent on) and 1 elsewhere. ``box_target`` holds the
    logo's corners in cells wherever ``box_weight`` is positive; each logo's weights sum to 1.
    ``label_map`` holds the brand index of the cells near each logo's centre, learnt where
    ``brand_weight`` is positive: the same cells and weights as the box's, but for the logos whose
    extent is not known, which have a brand weight and no box weight.
    """

    objectness: np.ndarray
    heatmap_weight: np.ndarray
    box_target: np.ndarray
    box_weight: np.ndarray
    label_map: np.ndarray
    brand_weight: np.ndarray


def grid_side(input_size: int) -> int:
    """Cells per side of the output grid for an input of ``input_size`` pixels."""
    return input_size // STRIDE


def make_targets(
    boxes: Sequence[TargetBox],
    *,
    ignored: Sequence[tuple[float, float, float, float]] = (),
    input_size: int,
) -> Targets:
    """The training targets of one view with these logos (input pixels)."""
    side = grid_side(input_size)
    objectness = np.zeros((side, side), dtype=np.float32)
    heatmap_weight = np.ones((side, side), dtype=np.float32)
    box_target = np.zeros((side, side, 4), dtype=np.float32)
    box_weight = np.zeros((side, side), dtype=np.float32)
    label_map = np.zeros((side, side), dtype=np.int32)
    brand_weight = np.zeros((side, side), dtype=np.float32)
    centres = (np.arange(side, dtype=np.float32) + 0.5) * STRIDE
    for region in ignored:
        inside_x = (centres >= region[0]) & (centres <= region[2])
        inside_y = (centres >= region[1]) & (centres <= region[3])
        heatmap_weight[np.ix_(inside_y, inside_x)] = 0.0
    # Larger logos first, so where two overlap the smaller one's box is the one regressed.
    for target in sorted(boxes, key=_area, reverse=True):
        gaussian, centre = _gaussian(target.box, side)
        row, column = centre
        objectness = np.maximum(objectness, gaussian)
        objectness[row, column] = 1.0
        heatmap_weight[row, column] = 1.0
        near = gaussian >= REGRESSION_FLOOR
        near[row, column] = True
        weights = np.where(near, gaussian, 0.0)
        weights /= weights.sum()
        box_weight[near] = weights[near] if target.extent_known else 0.0
        box_target[near] = np.asarray(target.box, dtype=np.float32) / STRIDE
        label_map[near] = target.label
        brand_weight[near] = weights[near]
    return Targets(objectness, heatmap_weight, box_target, box_weight, label_map, brand_weight)


def _area(target: TargetBox) -> float:
    box = target.box
    return (box[2] - box[0]) * (box[3] - box[1])


def _gaussian(
    box: tuple[float, float, float, float], side: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """The elliptical Gaussian of one logo on the grid, and its centre cell (row, column)."""
    centre_x = (box[0] + box[2]) / 2 / STRIDE
    centre_y = (box[1] + box[3]) / 2 / STRIDE
    column = int(np.clip(np.floor(centre_x), 0, side - 1))
    row = int(np.clip(np.floor(centre_y), 0, side - 1))
    sigma_x = max(GAUSSIAN_SHARE * (box[2] - box[0]) / STRIDE / 6, 0.3)
    sigma_y = max(GAUSSIAN_SHARE * (box[3] - box[1]) / STRIDE / 6, 0.3)
    cells = np.arange(side, dtype=np.float32)
    along_x = np.exp(-((cells - column) ** 2) / (2 * sigma_x**2))
    along_y = np.exp(-((cells - row) ** 2) / (2 * sigma_y**2))
    return np.outer(along_y, along_x).astype(np.float32), (row, column)


@dataclass(frozen=True)
class Peak:
    """One candidate logo: its score, brand index and box in input pixels.

    ``brand_probabilities`` is the detector's brand softmax at the peak's cell (the heatmap's
    column there, divided by its objectness), which the second look can weigh with its own.
    """

    score: float
    label: int
    box: tuple[float, float, float, float]
    brand_probabilities: tuple[float, ...] = ()


def find_peaks(heatmap: np.ndarray, box_map: np.ndarray, *, floor: float, limit: int) -> list[Peak]:
    """The heatmap's local maxima scoring at least ``floor``, the highest first, at most ``limit``.

    A cell is a peak of its brand when no neighbour (3x3) is higher: one logo lights up a patch of
    cells and the maximum names it once, which is why no suppression over boxes is needed for a
    brand's own peaks.
    """
    scores = np.asarray(heatmap, dtype=np.float32)
    padded = np.pad(scores, ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    neighbourhood = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(0, 1))
    highest = neighbourhood.max(axis=(-2, -1))
    rows, columns, labels = np.nonzero((scores >= highest) & (scores >= floor))
    values = scores[rows, columns, labels]
    order = np.argsort(-values, kind="stable")[:limit]
    return [
        Peak(
            score=float(values[index]),
            label=int(labels[index]),
            box=box_at(box_map, int(rows[index]), int(columns[index])),
            brand_probabilities=cell_brand_probabilities(
                scores[int(rows[index]), int(columns[index])]
            ),
        )
        for index in order
    ]


def cell_brand_probabilities(column: np.ndarray) -> tuple[float, ...]:
    """The brand softmax of one cell, from its heatmap column (objectness x softmax)."""
    total = float(np.sum(column, dtype=np.float64))
    if not total > 0:
        return tuple(1.0 / len(column) for _ in column)
    return tuple(float(value) / total for value in column)


def box_at(box_map: np.ndarray, row: int, column: int) -> tuple[float, float, float, float]:
    """The box (input pixels) the detector reads from cell (row, column)."""
    distances = (
        np.exp(
            np.clip(
                np.asarray(box_map[row, column], dtype=np.float64),
                -LOG_DISTANCE_LIMIT,
                LOG_DISTANCE_LIMIT,
            )
        )
        * STRIDE
    )
    centre_x = (column + 0.5) * STRIDE
    centre_y = (row + 0.5) * STRIDE
    return (
        float(centre_x - distances[0]),
        float(centre_y - distances[1]),
        float(centre_x + distances[2]),
        float(centre_y + distances[3]),
    )
