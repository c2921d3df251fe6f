"""Images that are not content: tracking pixels, ad images, avatars. Dropped before they are queued.

Feeds and posts carry more than the post's pictures. Blog platforms and feed proxies (WordPress,
FeedBurner) add 1x1 tracking pixels and share buttons to every entry, ad networks add their
images, and WordPress puts the author's gravatar in ``media:content`` beside the post's photo.
None of them can show a brand the post shows; all of them cost a fetch and a classification.

The rules are general, not per feed: a declared size of at most 2 pixels on a side, known tracker
and ad hosts and paths, avatar services, and spacer file names. Nothing else is dropped, so the
image a feed presents as the post's (enclosure, ``media:content``, the photo in its body) is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from monitor.domain import CollectedPost

TINY_SIDE_PIXELS = 2
"""A declared width or height at most this is a tracking pixel or a spacer, not a picture."""

# (host or host suffix, path prefix, what it is). A host matches itself and its subdomains.
NON_CONTENT_HOSTS: tuple[tuple[str, str, str], ...] = (
    ("feeds.feedburner.com", "/~r/", "a FeedBurner tracking pixel"),
    ("feeds.feedburner.com", "/~ff/", "a FeedBurner share button"),
    ("feedproxy.google.com", "/~r/", "a FeedBurner tracking pixel"),
    ("feeds.wordpress.com", "/1.0/", "a WordPress share button"),
    ("pixel.wp.com", "/", "a WordPress tracking pixel"),
    ("stats.wordpress.com", "/", "a WordPress tracking pixel"),
    ("stats.wp.com", "/", "a WordPress tracking pixel"),
    ("gravatar.com", "/avatar", "an avatar"),
    ("cdn.bsky.app", "/img/avatar", "an avatar"),
    ("doubleclick.net", "/", "an ad"),
    ("googlesyndication.com", "/", "an ad"),
    ("googleadservices.com", "/", "an ad"),
    ("amazon-adsystem.com", "/", "an ad"),
    ("adsrvr.org", "/", "an ad"),
    ("google-analytics.com", "/", "a tracking pixel"),
    ("pixel.quantserve.com", "/", "a tracking pixel"),
    ("scorecardresearch.com", "/", "a tracking pixel"),
    ("facebook.com", "/tr", "a tracking pixel"),
    ("bat.bing.com", "/", "a tracking pixel"),
)
SPACER_FILE = re.compile(
    r"/(?:spacer|pixel|blank|clear|transparent|1x1|trans|tracking|track|beacon)\.(?:gif|png)$"
)


def non_content_reason(url: str) -> str | None:
    """What the image at ``url`` is, when it is not content (a tracker, an ad...); else None.

    Only web URLs are judged: a local file named ``pixel.png`` is someone's photo.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return None
    host = (parts.hostname or "").rstrip(".").lower()
    path = parts.path or "/"
    for suffix, prefix, what in NON_CONTENT_HOSTS:
        if (host == suffix or host.endswith("." + suffix)) and path.startswith(prefix):
            return what
    if SPACER_FILE.search(path.lower()):
        return "a spacer or tracking pixel"
    return None


def declares_tiny(width: str | None, height: str | None) -> bool:
    """True when HTML or Media RSS attributes declare a side of at most ``TINY_SIDE_PIXELS``."""
    for value in (width, height):
        text = (value or "").strip().lower().removesuffix("px")
        if text.isdigit() and int(text) <= TINY_SIDE_PIXELS:
            return True
    return False


@dataclass
class SkippedImages:
    """How many images were dropped as non-content, by what they were."""

    by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    def add(self, reason: str, count: int = 1) -> None:
        if count:
            self.by_reason[reason] = self.by_reason.get(reason, 0) + count


def drop_non_content(posts: Iterable[CollectedPost]) -> tuple[list[CollectedPost], SkippedImages]:
    """The posts with non-content image URLs removed, and the count of what was removed.

    Images a collector already left out for a declared tiny size count too
    (``CollectedPost.skipped_images``).
    """
    skipped = SkippedImages()
    kept_posts = []
    for post in posts:
        skipped.add("a declared 1x1 or 2x2 image", post.skipped_images)
        kept = []
        for url in post.image_urls:
            reason = non_content_reason(url)
            if reason is None:
                kept.append(url)
            else:
                skipped.add(reason)
        kept_posts.append(replace(post, image_urls=tuple(kept), skipped_images=0))
    return kept_posts, skipped
