"""The HTML page: what it shows, where boxes go, and that hostile posts render inert."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pytest

from monitor.analytics.gallery import Gallery, GalleryItem
from monitor.analytics.html_report import BOX_COLOUR, render_report_html, safe_url
from monitor.analytics.report import BrandReport
from monitor.analytics.trend import Trend, TrendPeriod

HOSTILE_TEXT = '<script>alert("text")</script><img src=x onerror=alert(1)>'
HOSTILE_AUTHOR = '"onerror="alert(2)" x="<b>'
HOSTILE_NAME = "</figcaption><script>alert(3)</script>"
HOSTILE_URLS = [
    "javascript:alert(4)",
    "JaVaScRiPt:alert(5)",
    " javascript:alert(6)",
    "java\tscript:alert(7)",
    "data:text/html,<script>alert(8)</script>",
    "vbscript:msgbox(9)",
    "//evil.example/x",
    'https://ok.example/p?a="><script>alert(10)</script>',
]


def item(**overrides: object) -> GalleryItem:
    values: dict[str, object] = {
        "detection_id": 1,
        "post_id": 1,
        "image_id": 1,
        "platform": "social",
        "author": "ana",
        "author_name": None,
        "author_url": None,
        "post_url": "https://example.social/1",
        "posted_at": datetime(2026, 11, 10, 12, tzinfo=UTC),
        "text_excerpt": "new wheels",
        "brand": "acme",
        "probability": 0.93,
        "model_version": "v1",
        "box": (100, 60, 260, 200),
        "image_width": 400,
        "image_height": 300,
        "image_url": "https://img.example/1.jpg",
        "image_bytes": b"\xff\xd8fake",
        "image_media_type": "image/jpeg",
    }
    values.update(overrides)
    return GalleryItem(**values)  # type: ignore[arg-type]


def report(**overrides: object) -> BrandReport:
    values: dict[str, object] = {
        "brand": "acme",
        "since": date(2026, 11, 1),
        "until": date(2026, 11, 30),
        "detections": 1234,
        "posts": 1000,
        "image_only_posts": 850,
        "image_only_share": 0.85,
        "top_authors": [
            {"author": "bo", "platform": "reddit", "posts": 3, "followers": 10, "reach": 30},
            {"author": "cy", "platform": "jsonl:x", "posts": 1, "followers": None, "reach": None},
        ],
        "co_endorsed_brands": [{"brand": "globex", "accounts": 4}],
        "platforms": [{"platform": "reddit", "posts": 600}, {"platform": "bluesky", "posts": 400}],
        "sources": [{"source": "r/cars", "posts": 1000}],
        "probability_histogram": [{"from": 0.9, "to": 1.0, "detections": 1234}],
    }
    values.update(overrides)
    return BrandReport(**values)  # type: ignore[arg-type]


def trend(platforms: list[str] | None = None) -> Trend:
    names = platforms or ["reddit", "bluesky"]
    periods = [
        TrendPeriod(date(2026, 11, 10), {names[0]: 3, names[-1]: 1}),
        TrendPeriod(date(2026, 11, 11), {}),
        TrendPeriod(date(2026, 11, 12), {names[0]: 8}),
    ]
    return Trend(period="day", platforms=names, periods=periods, reach=54321)


def gallery(*items: GalleryItem, doubtful: list[GalleryItem] | None = None) -> Gallery:
    return Gallery(
        confident=list(items),
        sample=[],
        doubtful=doubtful or [],
        doubt_below=0.6,
        doubt_rule="probability below 0.60",
        seed=3,
    )


def render(
    the_report: BrandReport | None = None,
    the_trend: Trend | None = None,
    the_gallery: Gallery | None = None,
) -> str:
    return render_report_html(
        report=the_report or report(),
        trend=the_trend or trend(),
        gallery=the_gallery or gallery(item()),
        generated_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    )


class Page(HTMLParser):
    """Every element with its attributes, and the text, as a browser's parser sees them."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def attributes(self, name: str) -> list[str]:
        return [attrs[name] or "" for _, attrs in self.elements if name in attrs]


def test_the_page_shows_the_figures_chart_accounts_and_brands() -> None:
    page = render()
    text = " ".join(Page(page).text)
    expected_texts = ("1,234", "1,000", "54,321", "85%", "2026-11-01 to 2026-11-30", "globex")
    for expected in (*expected_texts, "r/cars", "0.9 to 1.0", "600"):
        assert expected in text
    svg = re.search(r"<svg.*?</svg>", page, re.S)
    assert svg is not None
    # three periods, three coloured rectangles (one period is empty), heights in proportion
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', svg.group(0))]
    assert len(heights) == 3
    assert heights[0] / heights[1] == pytest.approx(3, rel=0.05)
    assert heights[2] / heights[1] == pytest.approx(8, rel=0.05)
    assert 'href="https://www.reddit.com/user/bo"' in page  # linked: the platform names it
    assert "https://" not in re.search(r"<td>cy</td>", page).group(0)  # type: ignore[union-attr]


def test_the_box_is_placed_in_percent_of_the_photo() -> None:
    page = Page(render())
    styles = [
        attrs["style"]
        for tag, attrs in page.elements
        if attrs.get("class") == "box" and attrs.get("style")
    ]
    assert styles == ["left:25.000%;top:20.000%;width:40.000%;height:46.667%"]
    photos = [attrs for _, attrs in page.elements if attrs.get("class") == "photo"]
    assert photos[0]["style"] == "aspect-ratio:400/300"
    assert page.attributes("src") == ["data:image/jpeg;base64,/9hmYWtl"]
    assert BOX_COLOUR in render()


def test_without_stored_bytes_the_card_shows_the_original_url() -> None:
    page = Page(render(the_gallery=gallery(item(image_bytes=None, image_media_type=None))))
    assert page.attributes("src") == ["https://img.example/1.jpg"]
    assert page.attributes("referrerpolicy") == ["no-referrer"]


def test_unknown_photo_size_draws_no_box_rather_than_a_wrong_one() -> None:
    page = Page(render(the_gallery=gallery(item(image_width=None, image_height=None))))
    assert not [attrs for _, attrs in page.elements if attrs.get("class") == "box"]


def hostile_page() -> str:
    hostile_items = [
        item(
            detection_id=number,
            post_id=number,
            text_excerpt=HOSTILE_TEXT,
            author=HOSTILE_AUTHOR,
            author_name=HOSTILE_NAME,
            author_url=url,
            post_url=url,
            image_url=url,
            image_bytes=None,
            image_media_type=None,
            brand='<svg onload="alert(11)">',
            platform='mastodon:evil" onmouseover="alert(12)',
        )
        for number, url in enumerate(HOSTILE_URLS)
    ]
    authors = [
        {"author": HOSTILE_AUTHOR, "platform": "rss:x", "posts": 1, "followers": 1, "reach": 1},
        {"author": "javascript:alert(13)", "platform": "rss:x", "posts": 1},
    ]
    return render(
        report(
            brand="<b>acme</b>",
            top_authors=authors,
            co_endorsed_brands=[{"brand": HOSTILE_TEXT, "accounts": 1}],
            platforms=[{"platform": HOSTILE_TEXT, "posts": 1}],
            sources=[{"source": HOSTILE_NAME, "posts": 1}],
        ),
        trend([HOSTILE_TEXT, "<i>b</i>"]),
        gallery(*hostile_items, doubtful=hostile_items[:1]),
    )


def test_hostile_posts_render_as_inert_text() -> None:
    markup = hostile_page()
    page = Page(markup)
    tags = {tag for tag, _ in page.elements}
    assert "script" not in tags and "b" not in tags and "i" not in tags
    # only the https URL (quotes and all, escaped) became an image source
    assert page.attributes("src") == [HOSTILE_URLS[-1]]
    for _, attrs in page.elements:
        assert not [name for name in attrs if name.startswith("on")], attrs
    hrefs = page.attributes("href")
    assert hrefs and all(safe_url(href) for href in hrefs)
    assert all(href.startswith("https://") for href in hrefs)
    for style in page.attributes("style"):
        assert re.fullmatch(r"[a-z0-9:;%./#\-]*", style), style
    text = "".join(page.text)
    assert HOSTILE_TEXT in text and HOSTILE_NAME in text
    assert "javascript:alert(4)" in text  # shown for the reader, not clickable


def test_the_page_allows_no_script_at_all() -> None:
    page = Page(render())
    (policy,) = [
        attrs["content"]
        for tag, attrs in page.elements
        if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policy is not None and "default-src 'none'" in policy and "script-src" not in policy


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://example.social/p/1", True),
        ("http://example.social/p/1", True),
        ("HTTPS://EXAMPLE.SOCIAL/", True),
        *[(url, False) for url in HOSTILE_URLS[:7]],
        ("https:///nohost", False),
        ("https://exa mple/", False),
        ("https://[::1", False),
        ("", False),
        (None, False),
    ],
)
def test_only_http_urls_are_safe(url: str | None, safe: bool) -> None:
    assert (safe_url(url) is not None) == safe
