"""ImageLimits: built from the settings, and refusing nonsense values."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.images import ImageLimits


def test_limits_come_from_the_settings(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path,
        http_timeout_seconds=3.5,
        max_image_bytes=1234,
        max_image_pixels=5678,
        allow_private_image_hosts=True,
        allow_file_urls=False,
    )
    assert ImageLimits.from_settings(settings) == ImageLimits(
        timeout_seconds=3.5,
        max_bytes=1234,
        max_pixels=5678,
        allow_private_hosts=True,
        allow_file_urls=False,
    )


def test_defaults_match_the_settings_defaults(tmp_path: Path) -> None:
    assert ImageLimits.from_settings(load_settings(home=tmp_path)) == ImageLimits()


@pytest.mark.parametrize(
    ("field", "value"), [("timeout_seconds", 0.0), ("max_bytes", -1), ("max_pixels", 0)]
)
def test_non_positive_limits_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{field} must be positive"):
        ImageLimits(**{field: value})  # type: ignore[arg-type]
