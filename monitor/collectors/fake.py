"""The ``fake`` kind: posts given in the source's options, for tests of everything downstream.

Pipeline, storage and CLI tests need a source that behaves like a real one (limits, cursors,
failures) without a network or files. A ``fake`` source replays the ``posts`` it was configured
with, in order, ``limit`` at a time, and can be told to fail the way real sources fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from monitor.collectors._common import as_utc, expect_options
from monitor.collectors.base import (
    CollectorContext,
    CollectorKind,
    CollectorOptions,
    register_kind,
)
from monitor.domain import CollectedPost, CollectionBatch
from monitor.exceptions import (
    MalformedSourceError,
    RateLimitedError,
    SourceError,
    SourceUnavailableError,
)

FakeFailure = Literal["unavailable", "rate_limited", "malformed"]


class FakePost(BaseModel):
    """One post a fake source reports; the fields mirror ``CollectedPost``."""

    model_config = ConfigDict(extra="forbid")

    external_id: str
    platform: str | None = None
    url: str | None = None
    author_handle: str | None = None
    text: str | None = None
    created_at: datetime | None = None
    image_urls: list[str] = Field(default_factory=list)
    author_name: str | None = None
    author_followers: int | None = None
    language: str | None = None
    reposts: int | None = None


class FakeOptions(CollectorOptions):
    """Options of a ``fake`` source: the posts to report, and optionally a failure to raise."""

    posts: list[FakePost] = Field(default_factory=list)
    fail_with: FakeFailure | None = None


def failure(kind: FakeFailure, source_name: str) -> SourceError:
    """The error a real source of that failure kind would raise."""
    if kind == "rate_limited":
        return RateLimitedError(f"fake source {source_name} is rate limited", 30.0)
    if kind == "malformed":
        return MalformedSourceError(f"fake source {source_name} answered with garbage")
    return SourceUnavailableError(f"fake source {source_name} is unavailable")


class FakeCollector:
    """Replays the configured posts in order; the cursor is the index of the next one."""

    def __init__(self, options: FakeOptions, *, source_name: str) -> None:
        self.options = options
        self.source_name = source_name

    def collect(self, *, cursor: Mapping[str, Any] | None, limit: int) -> CollectionBatch:
        """The next ``limit`` configured posts after the cursor."""
        if self.options.fail_with is not None:
            raise failure(self.options.fail_with, self.source_name)
        start = int(cursor.get("next_index", 0)) if cursor else 0
        chosen = self.options.posts[start : start + max(limit, 0)]
        return CollectionBatch(
            posts=[self._post(post) for post in chosen],
            cursor={"next_index": start + len(chosen)},
        )

    def _post(self, post: FakePost) -> CollectedPost:
        return CollectedPost(
            platform=post.platform or f"fake:{self.source_name}",
            external_id=post.external_id,
            url=post.url,
            author_handle=post.author_handle,
            text=post.text,
            created_at=as_utc(post.created_at) if post.created_at else None,
            image_urls=tuple(post.image_urls),
            author_name=post.author_name,
            author_followers=post.author_followers,
            language=post.language,
            reposts=post.reposts,
        )


def build(options: CollectorOptions, context: CollectorContext) -> FakeCollector:
    """Build a fake collector from validated options."""
    return FakeCollector(expect_options(options, FakeOptions), source_name=context.source_name)


register_kind(
    CollectorKind(
        name="fake",
        options_model=FakeOptions,
        build=build,
        description="Replays the posts given in its options (for tests).",
    )
)
