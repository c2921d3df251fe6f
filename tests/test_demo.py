"""The demo's closing HTML report, written from what the demo stored."""

from __future__ import annotations

import html
from pathlib import Path

from monitor.demo import DEMO_GALLERY_SIZE, write_html_report
from monitor.inference.model_dir import read_metadata
from monitor.inference.tiny import write_tiny_model
from monitor.pipeline import Services
from tests.analytics.factories import PhotoPost, store_photo_posts


def test_the_demo_writes_the_brands_html_report(services: Services, tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "model", labels=["acme"], no_logo_threshold=0.6)
    version = read_metadata(model).version
    posts = [
        PhotoPost(str(n), [("acme", 0.5 + n / 40, (10, 10, 200, 150))], day=1 + n)
        for n in range(20)
    ]
    store_photo_posts(services, posts, model_version=version)
    path = write_html_report(services=services, brand="acme", model_dir=model)
    assert path == services.settings.home / "reports" / "acme.html"
    page = path.read_text(encoding="utf-8")
    assert page.count('class="card"') == 3 * DEMO_GALLERY_SIZE
    assert f"model {version}'s threshold 0.60" in html.unescape(page)
