"""Copy-paste views: pasted logos become targets, never cover a logo, and stay inside the input."""

from __future__ import annotations

import numpy as np
from PIL import Image

from monitor.inference.pasting import PastePlan, PatchBank, paste_patches, patch_bank
from monitor.inference.views import PhotoLogo, ViewPlan, augmented_view


def _photo(colour: tuple[int, int, int], size: tuple[int, int] = (200, 160)) -> Image.Image:
    return Image.new("RGB", size, colour)


def _bank() -> PatchBank:
    logo_photo = _photo((0, 0, 200))
    logo_photo.paste((250, 250, 0), (50, 40, 110, 80))
    return patch_bank(
        [
            (logo_photo, [((50.0, 40.0, 110.0, 80.0), 3, True)], True),
            (_photo((0, 150, 0)), [((10.0, 10.0, 40.0, 30.0), 1, False)], False),
        ]
    )


def test_bank_cuts_known_extents_and_keeps_background_known_photos_only() -> None:
    bank = _bank()
    assert [[logo.label for logo in brand] for brand in bank.logos] == [[3]]
    assert bank.logos[0][0].image.size == (60, 40)
    assert len(bank.backgrounds) == 1
    assert bank.aspects == (1.5,)


def test_pasted_logos_are_targets_clear_of_the_views_logos() -> None:
    bank = _bank()
    occupied = [(100.0, 100.0, 220.0, 200.0)]
    plan = PastePlan(share=1.0, max_patches=3, logo_share=1.0, min_side=20, max_side=60)
    rng = np.random.default_rng(0)
    pasted_any = False
    for _ in range(20):
        pixels = np.full((256, 256, 3), 114, dtype=np.uint8)
        out, targets = paste_patches(
            pixels, occupied=occupied, area=(0, 0, 256, 256), bank=bank, rng=rng, plan=plan
        )
        changed = np.any(out != pixels, axis=2)
        inside = np.zeros_like(changed)
        for target in targets:
            left, top, right, bottom = target.box
            assert target.label == 3
            assert 0 <= left < right <= 256 and 0 <= top < bottom <= 256
            assert (
                right <= occupied[0][0]
                or left >= occupied[0][2]
                or (bottom <= occupied[0][1] or top >= occupied[0][3])
            )
            inside[int(top) : int(bottom), int(left) : int(right)] = True
            # The logo's yellow shows in the middle of its patch.
            middle = out[int((top + bottom) / 2), int((left + right) / 2)]
            assert middle[0] > 150 and middle[1] > 150 and middle[2] < 100
        assert not np.any(changed & ~inside)
        pasted_any = pasted_any or bool(targets)
    assert pasted_any


def test_background_patches_change_pixels_but_add_no_target() -> None:
    bank = _bank()
    plan = PastePlan(share=1.0, logo_share=0.0, min_side=20, max_side=40)
    pixels = np.full((128, 128, 3), 114, dtype=np.uint8)
    changed = False
    rng = np.random.default_rng(1)
    for _ in range(10):
        out, targets = paste_patches(
            pixels, occupied=[], area=(0, 0, 128, 128), bank=bank, rng=rng, plan=plan
        )
        assert targets == []
        changed = changed or bool(np.any(out != pixels))
    assert changed


def test_share_zero_leaves_the_view_alone() -> None:
    pixels = np.full((64, 64, 3), 114, dtype=np.uint8)
    out, targets = paste_patches(
        pixels,
        occupied=[],
        area=(0, 0, 64, 64),
        bank=_bank(),
        rng=np.random.default_rng(0),
        plan=PastePlan(share=0.0),
    )
    assert targets == [] and np.array_equal(out, pixels)


def test_augmented_view_adds_pasted_logos_to_its_own() -> None:
    photo = _photo((30, 30, 30), (300, 300))
    logos = (PhotoLogo((10.0, 10.0, 60.0, 60.0), 0),)
    plan = ViewPlan(min_scale=1.0, max_scale=1.0, zoom_share=0.0, rotation_share=0.0)
    paste = PastePlan(share=1.0, logo_share=1.0, min_side=20, max_side=40)
    views = [
        augmented_view(
            photo,
            logos,
            300,
            rng=np.random.default_rng(seed),
            plan=plan,
            bank=_bank(),
            paste_plan=paste,
        )
        for seed in range(5)
    ]
    assert all(view.boxes[0].label == 0 for view in views)
    assert any(len(view.boxes) > 1 and view.boxes[1].label == 3 for view in views)
