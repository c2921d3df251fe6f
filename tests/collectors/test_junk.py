"""The general rules for non-content images, and the collect step that applies them."""

from __future__ import annotations

import pytest

from monitor.collectors.junk import declares_tiny, non_content_reason


@pytest.mark.parametrize(
    "url",
    [
        "https://feeds.feedburner.com/~r/Blog/~4/abc",
        "https://pixel.wp.com/b.gif?host=x&blog=1",
        "https://stats.wordpress.com/b.gif?v=1",
        "https://ad.doubleclick.net/ddm/ad/N1;sz=300x250",
        "https://secure.gravatar.com/avatar/0123?s=96",
        "https://www.facebook.com/tr?id=1&ev=PageView",
        "https://example.com/img/spacer.gif",
        "https://cdn.bsky.app/img/avatar/plain/did:plc:x/abc@jpeg",
    ],
)
def test_trackers_ads_avatars_and_spacers_are_named(url: str) -> None:
    assert non_content_reason(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://i0.wp.com/blog.example.org/wp-content/uploads/2026/11/photo.jpg?w=1200",
        "https://feeds.feedburner.com/GarageNotes",  # the feed itself, not a pixel path
        "https://cdn.bsky.app/img/feed_fullsize/plain/did:plc:x/abc@jpeg",
        "https://media.example.social/pixel-art/robot.png",
        "https://facebook.com/photo/123.jpg",
        "https://gravatar.com.example.net/avatar.jpg",  # not gravatar's host
        "file:///home/ana/photos/pixel.png",  # a local photo, whatever its name
    ],
)
def test_content_images_are_kept(url: str) -> None:
    assert non_content_reason(url) is None


@pytest.mark.parametrize(
    ("width", "height", "tiny"),
    [
        ("1", "1", True),
        ("2", None, True),
        ("1px", "600", True),
        ("120", "80", False),
        (None, None, False),
        ("", "x", False),
    ],
)
def test_declared_tiny_sizes(width: str | None, height: str | None, tiny: bool) -> None:
    assert declares_tiny(width, height) is tiny
