"""The ``reddit`` kind: the newest posts of a subreddit, from its public JSON listing.

Reads ``/r/NAME/new.json`` newest first, following ``after`` to older pages, until it reaches a post
already reported (the cursor is the newest ``created_utc`` and the fullnames at that second) or
the run's limit. Images come from direct image links (i.redd.it, .jpg...), galleries (in the
order of ``gallery_data``), or else the preview; Reddit HTML-escapes these URLs (``&amp;``), so
they are unescaped. Text posts are reported without images. Reddit does not expose follower
counts, so they stay None.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import field_validator

from monitor.collectors._common import (
    Watermark,
    check_base_url,
    expect_options,
    has_image_extension,
    int_or_none,
    mapping_at,
    parse_datetime,
    text_or_none,
    web_image_urls,
)
from monitor.collectors.base import (
    CollectorContext,
    CollectorKind,
    CollectorOptions,
    register_kind,
)
from monitor.domain import CollectedPost, CollectionBatch
from monitor.exceptions import MalformedSourceError

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
"""The most posts Reddit returns per listing page."""
SUBREDDIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")
IMAGE_HOSTS = frozenset({"i.redd.it", "i.imgur.com"})
GONE = frozenset({"[deleted]", "[removed]"})


class RedditOptions(CollectorOptions):
    """Options of a ``reddit`` source: the subreddit, and the site (for mirrors and tests)."""

    subreddit: str
    url: str = "https://www.reddit.com"

    @field_validator("subreddit")
    @classmethod
    def _subreddit(cls, value: str) -> str:
        name = re.sub(r"^/?r/", "", value.strip()).strip("/")
        if not SUBREDDIT_NAME.match(name):
            raise ValueError(f"must be a subreddit name like 'cars' or 'r/cars', got {value!r}")
        return name

    @field_validator("url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_base_url(value)


def unescaped(value: Any) -> str | None:
    """A string field as Reddit meant it (its JSON HTML-escapes ``&``, ``<`` and ``>``)."""
    text = text_or_none(value)
    return html.unescape(text) if text else None


def is_direct_image(url: str) -> bool:
    """True for a link straight to an image file rather than to a page."""
    return (urlsplit(url).hostname or "").lower() in IMAGE_HOSTS or has_image_extension(url)


def gallery_images(post: Mapping[str, Any]) -> list[str | None]:
    """A gallery's images in the order the poster arranged them, skipping failed uploads."""
    metadata = mapping_at(post, "media_metadata")
    items = mapping_at(post, "gallery_data").get("items")
    order = [item.get("media_id") for item in items or [] if isinstance(item, Mapping)]
    urls: list[str | None] = []
    for media_id in order or list(metadata):
        media = metadata.get(media_id) if isinstance(media_id, str) else None
        if not isinstance(media, Mapping) or media.get("status", "valid") != "valid":
            continue
        source = mapping_at(media, "s")
        urls.append(unescaped(source.get("u") or source.get("gif")))
    return urls


def preview_images(post: Mapping[str, Any]) -> list[str | None]:
    """The full-size preview of each image Reddit made for a link, video or image post."""
    images = mapping_at(post, "preview").get("images")
    return [
        unescaped(mapping_at(image, "source").get("url"))
        for image in images or []
        if isinstance(image, Mapping)
    ]


def post_images(post: Mapping[str, Any]) -> list[str | None]:
    """Image URLs of a post: its gallery, its direct image link, else its previews.

    A crosspost carries its images on the original post, which Reddit embeds.
    """
    if post.get("is_gallery") or post.get("media_metadata"):
        return gallery_images(post)
    link = unescaped(post.get("url_overridden_by_dest") or post.get("url"))
    if link and is_direct_image(link):
        return [link]
    previews = preview_images(post)
    if previews:
        return previews
    parents = post.get("crosspost_parent_list")
    if isinstance(parents, list) and parents and isinstance(parents[0], Mapping):
        return post_images(parents[0])
    return []


class RedditCollector:
    """Collects a subreddit's new posts."""

    def __init__(self, options: RedditOptions, *, http: Any) -> None:
        self.options = options
        self.http = http
        self.listing_url = f"{options.url}/r/{quote(options.subreddit)}/new.json"

    def collect(self, *, cursor: Mapping[str, Any] | None, limit: int) -> CollectionBatch:
        """Posts newer than the cursor, newest first, up to ``limit``."""
        watermark = Watermark.from_cursor(cursor)
        posts: list[CollectedPost] = []
        reported = []
        for post in self._listing(limit):
            created, name = parse_datetime(post.get("created_utc")), self._fullname(post)
            if created is None or name is None:
                logger.warning("skipped a post of r/%s without date or id", self.options.subreddit)
                continue
            if watermark.is_older(created):
                break
            if not watermark.is_new(created, name):
                continue
            posts.append(self._post(post, name))
            reported.append((created, name))
            if len(posts) >= limit:
                break
        return CollectionBatch(posts=posts, cursor=watermark.advanced(reported).to_cursor())

    def _listing(self, limit: int) -> Iterator[Mapping[str, Any]]:
        """Posts of the listing, page after page (``after``), newest first."""
        after: str | None = None
        while limit > 0:
            params = {"limit": min(PAGE_SIZE, limit), **({"after": after} if after else {})}
            response = self.http.get(
                self.listing_url, params=params, headers={"Accept": "application/json"}
            )
            self._check_landed_on_subreddit(response.url)
            listing = self._listing_data(response.json())
            children = listing.get("children") or []
            for child in children:
                if isinstance(child, Mapping) and child.get("kind") == "t3":
                    yield mapping_at(child, "data")
            after = text_or_none(listing.get("after"))
            if not after or not children:
                return

    def _check_landed_on_subreddit(self, final_url: str) -> None:
        """Reddit redirects an unknown subreddit to a search page instead of answering 404."""
        path = urlsplit(final_url).path.lower()
        if not path.startswith(f"/r/{self.options.subreddit.lower()}/"):
            raise MalformedSourceError(
                f"r/{self.options.subreddit} does not seem to exist (redirected to {final_url})"
            )

    def _listing_data(self, data: Any) -> Mapping[str, Any]:
        if not isinstance(data, Mapping) or data.get("kind") != "Listing":
            raise MalformedSourceError(f"{self.listing_url} did not return a Reddit listing")
        return mapping_at(data, "data")

    def _fullname(self, post: Mapping[str, Any]) -> str | None:
        name = text_or_none(post.get("name"))
        post_id = text_or_none(post.get("id"))
        return name or (f"t3_{post_id}" if post_id else None)

    def _post(self, post: Mapping[str, Any], name: str) -> CollectedPost:
        permalink = text_or_none(post.get("permalink"))
        author = text_or_none(post.get("author"))
        title, body = unescaped(post.get("title")), unescaped(post.get("selftext"))
        text = "\n\n".join(part for part in (title, body) if part and part not in GONE)
        return CollectedPost(
            platform="reddit",
            external_id=name,
            url=f"{self.options.url}{permalink}" if permalink else None,
            author_handle=None if author in GONE else author,
            text=text or None,
            created_at=parse_datetime(post.get("created_utc")),
            image_urls=web_image_urls(post_images(post), post=f"reddit post {name}"),
            author_name=None,
            author_followers=None,
            language=None,
            reposts=int_or_none(post.get("num_crossposts")),
        )


def build(options: CollectorOptions, context: CollectorContext) -> RedditCollector:
    """Build a Reddit collector from validated options."""
    return RedditCollector(expect_options(options, RedditOptions), http=context.http)


register_kind(
    CollectorKind(
        name="reddit",
        options_model=RedditOptions,
        build=build,
        description="The newest posts of a subreddit (subreddit=NAME).",
    )
)
