"""The ``mastodon`` kind: a hashtag, an account or the public timeline of a Mastodon instance.

Uses the public REST API (``/api/v1/timelines/tag/:tag``, ``/api/v1/accounts/:id/statuses``,
``/api/v1/timelines/public``), newest first, following the ``Link: rel="next"`` pages (``max_id``)
until the run's limit. The cursor is the newest status id seen; the next run asks only for
statuses after it (``since_id``). When more new statuses exist than the limit allows, the newest
ones are taken, so a busy hashtag stays current instead of falling behind.

A boost is reported as the boosted status and its author, once per run. The optional token is
sent only to the configured instance (the next-page links are checked to stay on it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlsplit

from pydantic import field_validator, model_validator

from monitor.collectors._common import (
    check_base_url,
    expect_options,
    int_or_none,
    mapping_at,
    parse_datetime,
    text_or_none,
    web_image_urls,
)
from monitor.collectors._html import html_to_text
from monitor.collectors.base import (
    CollectorContext,
    CollectorKind,
    CollectorOptions,
    register_kind,
)
from monitor.domain import CollectedPost, CollectionBatch
from monitor.exceptions import MalformedSourceError

logger = logging.getLogger(__name__)

PAGE_SIZE = 40
"""The most statuses Mastodon returns per page."""
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9_]+(@[A-Za-z0-9.-]+)?$")
VIDEO_TYPES = frozenset({"gifv", "video"})


class MastodonOptions(CollectorOptions):
    """Options of a ``mastodon`` source: the instance and exactly one of tag, account, timeline."""

    url: str
    tag: str | None = None
    account: str | None = None
    timeline: Literal["public"] | None = None
    token: str | None = None
    only_media: bool = False

    @field_validator("url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_base_url(value)

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        if value is None:
            return None
        tag = value.strip().lstrip("#")
        if not tag or not re.fullmatch(r"\w+", tag):
            raise ValueError(f"must be a hashtag of letters, digits and underscores, got {value!r}")
        return tag

    @field_validator("account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is None:
            return None
        account = value.strip().lstrip("@")
        if not ACCOUNT_NAME.match(account):
            raise ValueError(f"must be an account id or user@host, got {value!r}")
        return account

    @model_validator(mode="after")
    def _one_timeline(self) -> MastodonOptions:
        chosen = [name for name in ("tag", "account", "timeline") if getattr(self, name)]
        if len(chosen) != 1:
            raise ValueError("give exactly one of tag, account or timeline='public'")
        return self


def id_order(status_id: str) -> tuple[int, str]:
    """Sort key of a status id: numeric snowflakes and fixed-length ULIDs both sort this way."""
    return len(status_id), status_id


def newer_id(first: str | None, second: str | None) -> str | None:
    """The newer of two status ids (either may be missing)."""
    if first is None or second is None:
        return first or second
    return max(first, second, key=id_order)


def status_images(status: Mapping[str, Any], *, post: str) -> tuple[str, ...]:
    """Image URLs of a status: images in full, videos and GIFs by their preview frame."""
    urls: list[str | None] = []
    for media in status.get("media_attachments") or []:
        if not isinstance(media, Mapping):
            continue
        kind = media.get("type")
        if kind == "image":
            urls.append(media.get("url") or media.get("remote_url"))
        elif kind in VIDEO_TYPES:
            urls.append(media.get("preview_url"))
    return web_image_urls(urls, post=post)


def status_text(status: Mapping[str, Any]) -> str | None:
    """The content warning (if any) and the status's text without its HTML."""
    parts = [text_or_none(status.get("spoiler_text")), html_to_text(status.get("content"))]
    return "\n\n".join(part for part in parts if part) or None


class MastodonCollector:
    """Collects one timeline of one Mastodon instance."""

    def __init__(self, options: MastodonOptions, *, http: Any) -> None:
        self.options = options
        self.http = http
        parts = urlsplit(options.url)
        self.origin = (parts.scheme.lower(), parts.netloc.lower())
        self.platform = f"mastodon:{parts.netloc.lower()}"
        self._account_id: str | None = None

    def collect(self, *, cursor: Mapping[str, Any] | None, limit: int) -> CollectionBatch:
        """New statuses, newest first, up to ``limit``; the cursor is the newest id seen."""
        since_id = text_or_none((cursor or {}).get("since_id"))
        posts: list[CollectedPost] = []
        reported: set[str] = set()
        newest = since_id
        for status in self._statuses(since_id, limit):
            newest = newer_id(newest, str(status["id"]))
            post = self._post(status)
            if post is not None and post.external_id not in reported:
                reported.add(post.external_id)
                posts.append(post)
                if len(posts) >= limit:
                    break
        return CollectionBatch(posts=posts, cursor={"since_id": newest} if newest else None)

    def _statuses(self, since_id: str | None, limit: int) -> Iterator[Mapping[str, Any]]:
        """Statuses of the timeline, page after page, newest first."""
        if limit <= 0:
            return
        url: str | None = self._endpoint()
        params: dict[str, Any] | None = self._first_params(since_id, limit)
        while url:
            response = self.http.get(url, params=params, headers=self._headers())
            page = self._page(response.json(), url)
            yield from page
            if not page:
                return
            url, params = self._next_page(response, page, since_id, limit)

    def _endpoint(self) -> str:
        base, options = self.options.url, self.options
        if options.tag:
            return f"{base}/api/v1/timelines/tag/{quote(options.tag)}"
        if options.account:
            return f"{base}/api/v1/accounts/{self._resolve_account()}/statuses"
        return f"{base}/api/v1/timelines/public"

    def _first_params(self, since_id: str | None, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": min(PAGE_SIZE, limit)}
        if since_id:
            params["since_id"] = since_id
        if self.options.only_media:
            params["only_media"] = "true"
        return params

    def _headers(self) -> dict[str, str]:
        if self.options.token:
            return {"Authorization": f"Bearer {self.options.token}"}
        return {}

    def _resolve_account(self) -> str:
        """The account's id; ``user`` or ``user@host`` is looked up once per collector."""
        account = self.options.account or ""
        if account.isdigit():
            return account
        if self._account_id is None:
            url = f"{self.options.url}/api/v1/accounts/lookup"
            found = self.http.get_json(url, params={"acct": account}, headers=self._headers())
            if not isinstance(found, Mapping) or not found.get("id"):
                raise MalformedSourceError(f"{url} did not return an account for {account!r}")
            self._account_id = str(found["id"])
        return self._account_id

    def _page(self, data: Any, url: str) -> list[Mapping[str, Any]]:
        """The statuses of one page; entries without an id are skipped with a warning."""
        if not isinstance(data, list):
            raise MalformedSourceError(f"{url} did not return a list of statuses")
        statuses = []
        for status in data:
            if isinstance(status, Mapping) and status.get("id"):
                statuses.append(status)
            else:
                logger.warning("skipped a status without id from %s", url)
        return statuses

    def _next_page(
        self,
        response: Any,
        page: list[Mapping[str, Any]],
        since_id: str | None,
        limit: int,
    ) -> tuple[str | None, dict[str, Any] | None]:
        """The next (older) page: the server's ``rel="next"`` link, else ``max_id`` from ids."""
        if response.headers.get("Link") is not None:
            next_url = response.links.get("next")
            if next_url is None or not self._on_instance(next_url):
                return None, None
            query = parse_qs(urlsplit(next_url).query)
            return next_url, (
                {"since_id": since_id} if since_id and "since_id" not in query else None
            )
        if len(page) < min(PAGE_SIZE, limit):
            return None, None
        oldest = min((str(status["id"]) for status in page), key=id_order)
        return self._endpoint(), {**self._first_params(since_id, limit), "max_id": oldest}

    def _on_instance(self, url: str) -> bool:
        """True when a URL points at the configured instance (where the token may go)."""
        parts = urlsplit(url)
        if (parts.scheme.lower(), parts.netloc.lower()) == self.origin:
            return True
        logger.warning("not following a next-page link off the instance: %s", url[:200])
        return False

    def _post(self, status: Mapping[str, Any]) -> CollectedPost | None:
        """The status as a post; a boost becomes the boosted status with its own author."""
        original = mapping_at(status, "reblog") or status
        if not original.get("id"):
            return None
        account = mapping_at(original, "account")
        status_id = str(original["id"])
        return CollectedPost(
            platform=self.platform,
            external_id=status_id,
            url=text_or_none(original.get("url")) or text_or_none(original.get("uri")),
            author_handle=text_or_none(account.get("acct")),
            text=status_text(original),
            created_at=parse_datetime(original.get("created_at")),
            image_urls=status_images(original, post=f"{self.platform} status {status_id}"),
            author_name=text_or_none(account.get("display_name")),
            author_followers=int_or_none(account.get("followers_count")),
            language=text_or_none(original.get("language")),
            reposts=int_or_none(original.get("reblogs_count")),
        )


def build(options: CollectorOptions, context: CollectorContext) -> MastodonCollector:
    """Build a Mastodon collector from validated options."""
    return MastodonCollector(expect_options(options, MastodonOptions), http=context.http)


register_kind(
    CollectorKind(
        name="mastodon",
        options_model=MastodonOptions,
        build=build,
        description="A Mastodon hashtag, account or public timeline (url= the instance).",
    )
)
