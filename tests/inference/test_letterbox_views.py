"""Placing photos on the detector's input and the training views drawn from them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from monitor.inference.letterbox import PAD_VALUE, Placement, fitting_placement, letterbox
from monitor.inference.views import (
    MIN_VISIBLE,
    PhotoLogo,
    ViewPlan,
    augmented_view,
    serving_view,
)


def _photo(width: int, height: int) -> Image.Image:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, :] = (200, 30, 30)
    return Image.fromarray(pixels)


def test_a_photo_is_fitted_by_its_long_side_and_padded_grey() -> None:
    pixels = letterbox(_photo(400, 200), 64)
    assert pixels.shape == (64, 64, 3)
    assert tuple(pixels[10, 10]) == (200, 30, 30)
    assert tuple(pixels[40, 10]) == (PAD_VALUE,) * 3  # below the photo


def test_boxes_map_to_the_input_and_back() -> None:
    placement = fitting_placement((400, 200), 64)
    moved = placement.to_input((100, 50, 200, 150))
    assert moved == pytest.approx((16, 8, 32, 24))
    assert placement.to_photo(moved, (400, 200)) == (100, 50, 200, 150)


def test_boxes_mapped_back_stay_inside_the_photo() -> None:
    placement = Placement(scale=0.5, left=-10, top=0)
    assert placement.to_photo((-50.0, -5.0, 500.0, 30.0), (100, 80)) == (0, 0, 100, 60)


def test_the_serving_view_keeps_every_logo() -> None:
    view = serving_view(_photo(300, 200), [PhotoLogo((30, 40, 90, 100), 2)], 96)
    assert len(view.boxes) == 1 and not view.ignored
    assert view.boxes[0].label == 2
    assert view.boxes[0].box == pytest.approx((9.6, 12.8, 28.8, 32.0))


def test_augmented_views_keep_whole_logos_and_ignore_cut_ones() -> None:
    rng = np.random.default_rng(0)
    plan = ViewPlan(min_scale=1.3, max_scale=1.4, rotation_share=0.0)
    kept = ignored = 0
    for _ in range(60):
        view = augmented_view(
            _photo(300, 300), [PhotoLogo((0, 100, 120, 200), 0)], 96, rng=rng, plan=plan
        )
        assert view.pixels.shape == (96, 96, 3)
        for target in view.boxes:
            x1, y1, x2, y2 = target.box
            assert 0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 96
        kept += len(view.boxes)
        ignored += len(view.ignored)
    assert kept and ignored  # zoomed in and shifted, the logo is sometimes cut off the left


def test_a_view_that_cuts_most_of_a_logo_ignores_it() -> None:
    from monitor.inference.views import _placed

    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    share = MIN_VISIBLE - 0.1
    placement = Placement(scale=1.0, left=-round(100 * (1 - share)), top=0)
    view = _placed(pixels, [PhotoLogo((0, 0, 100, 20), 0)], placement, 64)
    assert not view.boxes and len(view.ignored) == 1


def test_rotated_views_keep_the_logo_near_its_place() -> None:
    rng = np.random.default_rng(3)
    plan = ViewPlan(rotation_share=1.0, min_scale=1.0, max_scale=1.0)
    view = augmented_view(
        _photo(200, 200), [PhotoLogo((80, 80, 120, 120), 0)], 200, rng=rng, plan=plan
    )
    (target,) = view.boxes
    width = target.box[2] - target.box[0]
    assert 38 <= width <= 46


def test_a_logo_whose_extent_is_not_known_stays_so_through_turns_and_placing() -> None:
    rng = np.random.default_rng(5)
    plan = ViewPlan(rotation_share=1.0, min_scale=1.0, max_scale=1.0)
    logos = [PhotoLogo((20, 20, 60, 60), 0), PhotoLogo((120, 120, 160, 160), 1, False)]
    view = augmented_view(_photo(200, 200), logos, 200, rng=rng, plan=plan)
    assert [(target.label, target.extent_known) for target in view.boxes] == [(0, True), (1, False)]
