"""What the second look is trained on: the detector's candidates labelled against the boxes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from monitor.inference.datasets import LabeledPhoto, LogoBox
from monitor.inference.samples import NO_BOX, SampleSpec
from monitor.inference.training.options import TrainOptions
from monitor.inference.training.verifier_run import (
    Located,
    _candidate_spec,
    _jittered_window,
    _window_in_picture,
    window_options,
)
from monitor.inference.verification import VerifierSettings

SETTINGS = VerifierSettings(input_size=64, context=1.6, candidates=3, min_side=16)
LABELS = {"acme": 0, "globex": 1}
NO_LOGO = 2
PHOTO = LabeledPhoto(
    path=Path("unused.jpg"),
    name="unused.jpg",
    size=(400, 300),
    brands=("acme",),
    boxes=(LogoBox("acme", (100, 100, 160, 140)),),
)


def _spec(box: tuple[int, int, int, int], photo: LabeledPhoto = PHOTO) -> SampleSpec | None:
    located = Located(box=box, picture=(0, 0, *photo.size))
    return _candidate_spec(0, photo, located, SETTINGS, LABELS, NO_LOGO)


def test_a_candidate_on_a_logo_is_a_sample_of_that_logos_brand() -> None:
    spec = _spec((102, 98, 158, 142))
    assert spec is not None and spec.label == 0 and spec.has_box
    left, top, right, bottom = spec.window
    assert left <= 100 and top <= 100 and right >= 160 and bottom >= 140


def test_a_candidate_far_from_every_logo_is_no_logo() -> None:
    spec = _spec((300, 200, 340, 240))
    assert spec is not None and spec.label == NO_LOGO and spec.box_fractions == NO_BOX


def test_a_candidate_half_on_a_logo_is_left_out() -> None:
    assert _spec((130, 100, 190, 140)) is None  # IoU 1/3 with the logo
    assert _spec((60, 60, 200, 180)) is None  # a loose box holding the whole logo


def test_a_photo_without_known_boxes_gives_no_negatives() -> None:
    folder_photo = LabeledPhoto(
        path=Path("unused.jpg"), name="unused.jpg", size=(400, 300), brands=("acme",)
    )
    assert _spec((300, 200, 340, 240), folder_photo) is None
    whole = _spec((10, 10, 390, 290), folder_photo)
    assert whole is not None and whole.label == 0


def test_a_photo_with_unboxed_logos_gives_its_boxed_logos_but_no_negatives() -> None:
    marked = replace(PHOTO, unboxed_logos=True)
    assert _spec((300, 200, 340, 240), marked) is None
    on_logo = _spec((102, 98, 158, 142), marked)
    assert on_logo is not None and on_logo.label == 0


def test_region_candidates_keep_their_window_inside_the_region() -> None:
    located = Located(box=(210, 110, 230, 130), picture=(200, 100, 260, 160))
    left, top, right, bottom = _window_in_picture(located, SETTINGS)
    assert 200 <= left < right <= 260 and 100 <= top < bottom <= 160


def test_jittered_windows_stay_inside_the_photo_and_near_the_logo() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        left, top, right, bottom = _jittered_window(
            (360, 250, 400, 300), (400, 300), SETTINGS, rng, jitter=True
        )
        assert 0 <= left < right <= 400 and 0 <= top < bottom <= 300
        assert left < 400 - 20 and top < 300 - 25  # the logo is still in view


def test_the_second_look_trains_with_its_own_options_not_the_window_models() -> None:
    options = TrainOptions(
        finetune_from_block=9,
        verifier_finetune_from_block=12,
        epochs_finetune=8,
        verifier_epochs_finetune=3,
        image_size=224,
        verifier_input_size=96,
    )
    windows = window_options(options)
    assert windows.architecture == "windows"
    assert windows.finetune_from_block == 12
    assert windows.epochs_finetune == 3
    assert windows.image_size == 96
    assert windows.hard_negatives == 0
