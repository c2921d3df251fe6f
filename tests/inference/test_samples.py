"""Training samples: windows around logos, logo-free windows, augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.inference.datasets import LabeledPhoto, LogoBox, grown_boxes
from monitor.inference.samples import (
    Augmentation,
    SampleSpec,
    SamplingPlan,
    box_fractions,
    hard_negative_candidates,
    logo_window,
    plan_samples,
    render_sample,
)
from monitor.inference.windows import grid_windows, intersection_area
from tests.inference.factories import draw_photo

BOX = (100, 80, 160, 120)


def test_logo_windows_show_most_of_the_logo_at_many_scales() -> None:
    rng = np.random.default_rng(0)
    plan = SamplingPlan()
    widths = []
    for _ in range(300):
        window = logo_window((400, 300), BOX, plan=plan, rng=rng)
        assert 0 <= window[0] < window[2] <= 400 and 0 <= window[1] < window[3] <= 300
        shown = intersection_area(window, BOX) / (60 * 40)
        assert shown >= (1 - plan.max_cut_share) ** 2 - 0.05
        widths.append(window[2] - window[0])
    assert min(widths) < 80 and max(widths) > 180


def test_box_fractions() -> None:
    assert box_fractions((10, 20, 30, 40), (0, 0, 100, 50)) == (0.1, 0.4, 0.3, 0.8)
    assert box_fractions((-10, 0, 300, 10), (0, 0, 100, 50)) == (0.0, 0.0, 1.0, 0.2)


def _photo(boxes: tuple[LogoBox, ...], brands: tuple[str, ...]) -> LabeledPhoto:
    return LabeledPhoto(Path("unused"), "p", (400, 300), brands, boxes)


def test_plan_draws_logo_windows_and_logo_free_windows() -> None:
    photos = [
        _photo((LogoBox("globex", BOX),), ("globex",)),
        _photo((), ()),  # a logo-free photo: whole photo plus regions are "no logo"
    ]
    plan = SamplingPlan(windows_per_box=5, backgrounds_per_photo=3)
    specs = plan_samples(photos, labels=["acme", "globex"], plan=plan, rng=np.random.default_rng(1))
    logos = [spec for spec in specs if spec.label == 1]
    no_logo = [spec for spec in specs if spec.label == 2]
    assert len(logos) == 5 and all(spec.has_box for spec in logos)
    assert len(no_logo) == 3 + 1 + 3
    assert not any(spec.has_box for spec in no_logo)
    for spec in no_logo:
        if spec.photo_index == 0:
            assert intersection_area(spec.window, BOX) == 0


def test_large_logos_also_give_a_whole_photo_sample() -> None:
    big = (50, 50, 350, 250)
    photos = [_photo((LogoBox("acme", big),), ("acme",))]
    plan = SamplingPlan(windows_per_box=1, backgrounds_per_photo=0)
    specs = plan_samples(photos, labels=["acme"], plan=plan, rng=np.random.default_rng(1))
    assert any(spec.window == (0, 0, 400, 300) for spec in specs)


def test_render_is_the_window_resized_and_augmentation_changes_it() -> None:
    image = draw_photo((400, 300), [("acme", BOX)], seed=0)
    plain = SampleSpec(0, BOX, 0, (0.0, 0.0, 1.0, 1.0), True)
    pixels = render_sample(image, plain, 32)
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
    centre = pixels[8, 16]
    assert centre[0] > 150 and centre[1] < 100  # the red "logo" fills the window
    altered = SampleSpec(
        0,
        BOX,
        0,
        (0.0, 0.0, 1.0, 1.0),
        True,
        Augmentation(rotation_degrees=8, brightness=0.6, blur_radius=1.0, greyscale=True),
    )
    changed = render_sample(image, altered, 32)
    assert changed.shape == pixels.shape
    assert np.all(changed[..., 0] == changed[..., 1])  # greyscale
    assert np.abs(changed.astype(int) - pixels.astype(int)).mean() > 10


@pytest.mark.parametrize("seed", [0, 1])
def test_augmentations_never_flip(seed: int) -> None:
    photos = [_photo((LogoBox("acme", BOX),), ("acme",))]
    specs = plan_samples(
        photos, labels=["acme"], plan=SamplingPlan(), rng=np.random.default_rng(seed)
    )
    assert all(abs(spec.augmentation.rotation_degrees) <= 10 for spec in specs)
    assert "flip" not in " ".join(Augmentation.__dataclass_fields__)


def _candidates(photos: list[LabeledPhoto], *, per_photo: int) -> list[SampleSpec]:
    """Hard-negative candidates on grids 1-3, the "no logo" class numbered 5."""
    return hard_negative_candidates(
        photos,
        no_logo=5,
        grids=(1, 2, 3),
        overlap=0.25,
        min_window_side=48,
        per_photo=per_photo,
        rng=np.random.default_rng(0),
    )


def test_hard_negative_candidates_are_grid_windows_clear_of_every_logo() -> None:
    logo = LogoBox("nike", (20, 20, 120, 100))
    photos = [
        _photo((logo,), ("nike",)),
        LabeledPhoto(Path("unused"), "free", (400, 300), (), ()),
        LabeledPhoto(Path("unused"), "unknown place", (400, 300), ("nike",), ()),
    ]
    specs = _candidates(photos, per_photo=100)
    by_photo = {index: [spec for spec in specs if spec.photo_index == index] for index in range(3)}
    every_window = set(grid_windows(400, 300, grids=(1, 2, 3), overlap=0.25, min_window_side=48))
    assert len(by_photo[2]) == 0, "a photo whose logo place is unknown has no safe window"
    assert {spec.window for spec in by_photo[1]} == every_window
    assert 0 < len(by_photo[0]) < len(every_window)
    for spec in specs:
        assert spec.label == 5 and not spec.has_box
        assert spec.window in every_window
    grown = grown_boxes(photos[0])
    assert all(intersection_area(spec.window, grown[0]) == 0 for spec in by_photo[0])

    capped = _candidates(photos, per_photo=3)
    assert [sum(spec.photo_index == index for spec in capped) for index in range(3)] == [3, 3, 0]
