"""The ``bluesky`` kind: an account's feed or a search, from a public Bluesky AppView.

Uses ``app.bsky.feed.getAuthorFeed`` (``actor``) or ``app.bsky.feed.searchPosts`` (``query``,
newest first), following ``cursor`` until the run's limit or the first item already reported
(the source's cursor is the newest ``indexedAt`` and the post URIs at that instant). Images come
from ``app.bsky.embed.images#view`` (full size), the media of
``app.bsky.embed.recordWithMedia#view``, and a video's thumbnail. A repost is credited to the
original post and its author, once per run. A pinned post sits on top of an author feed whatever
its age, so it never ends the walk through the feed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import field_validator, model_validator

from monitor.collectors._common import (
    Watermark,
    check_base_url,
    expect_options,
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
"""The most items the feed and search endpoints return per page."""
IMAGES_VIEW = "app.bsky.embed.images#view"
RECORD_WITH_MEDIA_VIEW = "app.bsky.embed.recordWithMedia#view"
VIDEO_VIEW = "app.bsky.embed.video#view"
REPOST = "app.bsky.feed.defs#reasonRepost"
PIN = "app.bsky.feed.defs#reasonPin"


class BlueskyOptions(CollectorOptions):
    """Options of a ``bluesky`` source: the AppView, and exactly one of actor or query."""

    url: str = "https://public.api.bsky.app"
    actor: str | None = None
    query: str | None = None

    @field_validator("url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_base_url(value)

    @field_validator("actor")
    @classmethod
    def _actor(cls, value: str | None) -> str | None:
        if value is None:
            return None
        actor = value.strip().lstrip("@")
        if not actor or " " in actor:
            raise ValueError(f"must be a handle (name.bsky.social) or a DID, got {value!r}")
        return actor

    @field_validator("query")
    @classmethod
    def _query(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value.strip() if value else None

    @model_validator(mode="after")
    def _one_feed(self) -> BlueskyOptions:
        if (self.actor is None) == (self.query is None):
            raise ValueError("give exactly one of actor or query")
        return self


@dataclass(frozen=True)
class FeedItem:
    """A post as the feed lists it: when it entered the feed, and whether it is pinned."""

    post: Mapping[str, Any]
    listed_at: datetime
    pinned: bool


def embed_images(embed: Mapping[str, Any]) -> list[str | None]:
    """Full-size image URLs of an embed view (images, record with media, video thumbnail)."""
    kind = embed.get("$type")
    if kind == IMAGES_VIEW:
        images = embed.get("images") or []
        return [image.get("fullsize") for image in images if isinstance(image, Mapping)]
    if kind == RECORD_WITH_MEDIA_VIEW:
        return embed_images(mapping_at(embed, "media"))
    if kind == VIDEO_VIEW:
        return [embed.get("thumbnail")]
    return []


def author_handle(author: Mapping[str, Any]) -> str | None:
    """The author's handle, or their DID when the handle no longer resolves."""
    handle = text_or_none(author.get("handle"))
    return handle if handle and handle != "handle.invalid" else text_or_none(author.get("did"))


def post_url(post: Mapping[str, Any]) -> str | None:
    """The post's page on bsky.app, from its author and the record key of its at:// URI."""
    uri = text_or_none(post.get("uri")) or ""
    profile = author_handle(mapping_at(post, "author"))
    if not uri.startswith("at://") or "/app.bsky.feed.post/" not in uri or not profile:
        return None
    return f"https://bsky.app/profile/{profile}/post/{uri.rsplit('/', 1)[-1]}"


class BlueskyCollector:
    """Collects an author feed or a search."""

    def __init__(self, options: BlueskyOptions, *, http: Any) -> None:
        self.options = options
        self.http = http
        if options.actor:
            self.endpoint = f"{options.url}/xrpc/app.bsky.feed.getAuthorFeed"
            self.base_params: dict[str, str] = {"actor": options.actor}
        else:
            self.endpoint = f"{options.url}/xrpc/app.bsky.feed.searchPosts"
            self.base_params = {"q": options.query or "", "sort": "latest"}

    def collect(self, *, cursor: Mapping[str, Any] | None, limit: int) -> CollectionBatch:
        """Posts listed after the cursor, newest first, up to ``limit``."""
        watermark = Watermark.from_cursor(cursor)
        posts: list[CollectedPost] = []
        reported: list[tuple[datetime, str]] = []
        for item in self._items(limit):
            uri = str(item.post["uri"])
            if watermark.is_older(item.listed_at) and not item.pinned:
                break
            if not watermark.is_new(item.listed_at, uri):
                continue
            reported.append((item.listed_at, uri))
            if all(post.external_id != uri for post in posts):
                posts.append(self._post(item.post))
                if len(posts) >= limit:
                    break
        return CollectionBatch(posts=posts, cursor=watermark.advanced(reported).to_cursor())

    def _items(self, limit: int) -> Iterator[FeedItem]:
        """Feed items page after page (``cursor``), newest first."""
        page_cursor: str | None = None
        while limit > 0:
            params = {**self.base_params, "limit": min(PAGE_SIZE, limit)}
            if page_cursor:
                params["cursor"] = page_cursor
            data = self.http.get_json(self.endpoint, params=params)
            if not isinstance(data, Mapping):
                raise MalformedSourceError(f"{self.endpoint} did not return an object")
            entries = self._entries(data)
            yield from entries
            page_cursor = text_or_none(data.get("cursor"))
            if not page_cursor or not entries:
                return

    def _entries(self, data: Mapping[str, Any]) -> list[FeedItem]:
        """The page's items; a feed lists ``{post, reason}``, a search lists bare posts."""
        raw = data.get("feed") if self.options.actor else data.get("posts")
        if not isinstance(raw, list):
            key = "feed" if self.options.actor else "posts"
            raise MalformedSourceError(f"{self.endpoint} returned no {key!r} list")
        items = []
        for entry in raw:
            item = self._item(entry) if isinstance(entry, Mapping) else None
            if item is None:
                logger.warning("skipped an item without uri or date from %s", self.endpoint)
            else:
                items.append(item)
        return items

    def _item(self, entry: Mapping[str, Any]) -> FeedItem | None:
        post = mapping_at(entry, "post") if self.options.actor else entry
        reason = mapping_at(entry, "reason") if self.options.actor else {}
        listed = reason.get("indexedAt") if reason.get("$type") == REPOST else None
        listed_at = parse_datetime(listed or post.get("indexedAt"))
        if not text_or_none(post.get("uri")) or listed_at is None:
            return None
        return FeedItem(post=post, listed_at=listed_at, pinned=reason.get("$type") == PIN)

    def _post(self, post: Mapping[str, Any]) -> CollectedPost:
        record, author = mapping_at(post, "record"), mapping_at(post, "author")
        uri = str(post["uri"])
        languages = record.get("langs")
        return CollectedPost(
            platform="bluesky",
            external_id=uri,
            url=post_url(post),
            author_handle=author_handle(author),
            text=text_or_none(record.get("text")),
            created_at=parse_datetime(record.get("createdAt"))
            or parse_datetime(post.get("indexedAt")),
            image_urls=web_image_urls(embed_images(mapping_at(post, "embed")), post=uri),
            author_name=text_or_none(author.get("displayName")),
            author_followers=int_or_none(author.get("followersCount")),
            language=text_or_none(languages[0])
            if isinstance(languages, list) and languages
            else None,
            reposts=int_or_none(post.get("repostCount")),
        )


def build(options: CollectorOptions, context: CollectorContext) -> BlueskyCollector:
    """Build a Bluesky collector from validated options."""
    return BlueskyCollector(expect_options(options, BlueskyOptions), http=context.http)


register_kind(
    CollectorKind(
        name="bluesky",
        options_model=BlueskyOptions,
        build=build,
        description="A Bluesky account's feed (actor=handle) or a search (query=words).",
    )
)
