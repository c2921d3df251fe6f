"""The HTML report in a real browser: headless Chromium draws the page and we read its pixels.

Each gallery photo here is one colour with a rectangle of another exactly where the stored box is;
the test finds, in Chromium's screenshot, the displayed photo, the rectangle and the box's outline,
and checks that the outline sits where the stored box lands once scaled to the displayed size. The
screenshots are kept in ``build/browser-tests/``. Without Chromium the tests are skipped with the
reason, except on CI (``MONITOR_REQUIRE_SERVICES=1``), where that is a failure.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monitor.analytics.html_export import build_html_report
from monitor.analytics.html_report import BOX_BORDER_PIXELS, BOX_COLOUR
from monitor.analytics.report import build_report
from monitor.domain import Box
from monitor.pipeline import Services
from monitor.storage.db import session_scope
from tests.analytics.factories import (
    MARK_COLOUR,
    PHOTO_BACKGROUND,
    PhotoPost,
    photo_with_mark,
    store_photo_posts,
)
from tests.analytics.test_html_report import HOSTILE_NAME, HOSTILE_TEXT, hostile_page
from tests.conftest import REQUIRE_SERVICES, ServedFiles

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "browser-tests"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
WINDOW = (1000, 1600)
TOLERANCE_PIXELS = 2.0


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    reason = "Chromium is not installed (Debian: apt-get install -y chromium)"
    if REQUIRE_SERVICES:
        pytest.fail(f"MONITOR_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def run_browser(chromium: str, page: Path, profile: Path, *arguments: str) -> str:
    """Run Chromium once on ``page`` with a fresh profile; its standard output."""
    completed = subprocess.run(
        [chromium, *BROWSER_FLAGS, f"--user-data-dir={profile}", *arguments, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def screenshot(chromium: str, page: Path, tmp_path: Path, name: str) -> np.ndarray:
    """The page as Chromium draws it in a 1000x1600 window, kept as ``build/browser-tests/NAME``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / name
    target.unlink(missing_ok=True)
    run_browser(
        chromium,
        page,
        tmp_path / "profile",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--screenshot={target}",
    )
    with Image.open(target) as shot:
        return np.asarray(shot.convert("RGB")).astype(int)


def bounds(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int = 40) -> Box:
    """The smallest rectangle (x1, y1, x2, y2; x2, y2 exclusive) holding every pixel of ``colour``."""
    mask = (np.abs(pixels - np.array(colour)) <= tolerance).all(axis=-1)
    ys, xs = np.nonzero(mask)
    assert xs.size, f"no pixel of colour {colour} on the page"
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def hex_colour(code: str) -> tuple[int, int, int]:
    return int(code[1:3], 16), int(code[3:5], 16), int(code[5:7], 16)


def scaled(box: Box, size: tuple[int, int], photo: Box) -> tuple[float, float, float, float]:
    """``box`` (photo pixels) on the screen, where the photo is drawn at ``photo``."""
    width, height = photo[2] - photo[0], photo[3] - photo[1]
    return (
        photo[0] + box[0] / size[0] * width,
        photo[1] + box[1] / size[1] * height,
        photo[0] + box[2] / size[0] * width,
        photo[1] + box[3] / size[1] * height,
    )


def write_report(services: Services, path: Path) -> Path:
    with session_scope(services.sessions) as session:
        page = build_html_report(
            session=session,
            report=build_report(session=session, brand="acme"),
            generated_at=datetime(2026, 12, 1, tzinfo=UTC),
        )
    assert page.count('class="box"') == 1  # one card, so one box on the screen
    path.write_text(page, encoding="utf-8")
    return path


def assert_box_over_the_mark(pixels: np.ndarray, box: Box, size: tuple[int, int]) -> None:
    photo = bounds(pixels, PHOTO_BACKGROUND)
    assert photo[2] - photo[0] > 200  # the photo is drawn at card size, not as a broken icon
    displayed = (photo[2] - photo[0]) / (photo[3] - photo[1])
    assert displayed == pytest.approx(size[0] / size[1], abs=0.02)
    expected = scaled(box, size, photo)
    outline = bounds(pixels, hex_colour(BOX_COLOUR))
    assert outline == pytest.approx(expected, abs=TOLERANCE_PIXELS)
    # the photo's own mark shows inside the outline, right up to its inner edge
    inner = (
        expected[0] + BOX_BORDER_PIXELS,
        expected[1] + BOX_BORDER_PIXELS,
        expected[2] - BOX_BORDER_PIXELS,
        expected[3] - BOX_BORDER_PIXELS,
    )
    assert bounds(pixels, MARK_COLOUR) == pytest.approx(inner, abs=TOLERANCE_PIXELS)


def test_the_box_sits_over_the_logo_in_an_embedded_thumbnail(
    chromium: str, services: Services, tmp_path: Path
) -> None:
    box, size = (100, 60, 260, 200), (400, 300)
    store_photo_posts(services, [PhotoPost("1", [("acme", 0.9, box)], size=size)])
    page = write_report(services, tmp_path / "report.html")
    assert "data:image/jpeg;base64," in page.read_text(encoding="utf-8")
    pixels = screenshot(chromium, page, tmp_path, f"thumbnail-{services.settings.database[:6]}.png")
    assert_box_over_the_mark(pixels, box, size)


def test_the_box_sits_over_the_logo_in_a_photo_loaded_from_its_url(
    chromium: str, services: Services, tmp_path: Path, file_server: ServedFiles
) -> None:
    box, size = (1100, 80, 1500, 400), (1600, 900)  # bigger than a thumbnail, shown scaled down
    url = file_server.add("/photo.jpg", photo_with_mark(size, box))
    store_photo_posts(
        services,
        [PhotoPost("1", [("acme", 0.9, box)], size=size, keep_bytes=False, image_url=url)],
    )
    page = write_report(services, tmp_path / "report.html")
    pixels = screenshot(chromium, page, tmp_path, f"original-{services.settings.database[:6]}.png")
    assert file_server.hits.get("/photo.jpg") == 1
    assert_box_over_the_mark(pixels, box, size)


class Dom(HTMLParser):
    """Element names and text of the DOM Chromium built."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_hostile_posts_stay_text_in_the_browser(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "hostile.html"
    page.write_text(hostile_page(), encoding="utf-8")
    dom = Dom(run_browser(chromium, page, tmp_path / "profile", "--dump-dom"))
    assert "figure" in dom.tags  # the cards were built
    assert "script" not in dom.tags and "b" not in dom.tags
    text = "".join(dom.text)
    assert HOSTILE_TEXT in text and HOSTILE_NAME in text
