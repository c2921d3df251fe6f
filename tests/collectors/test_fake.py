"""The fake kind replays configured posts like a real source, for downstream tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.collectors.base import Collector, CollectorContext, build_collector, validate_options
from monitor.exceptions import ConfigurationError, MalformedSourceError, RateLimitedError

POSTS = [
    {"external_id": "1", "image_urls": ["https://img.example/1.jpg"], "text": "one"},
    {"external_id": "2", "created_at": "2024-05-01T10:00:00+02:00", "author_followers": 7},
    {"external_id": "3", "platform": "reddit"},
]


def build(options: dict[str, object]) -> Collector:
    stored = validate_options("fake", options)
    return build_collector("fake", stored, CollectorContext(source_name="demo", http=None))


def test_replays_posts_in_order_with_limit_and_cursor() -> None:
    collector = build({"posts": POSTS})

    first = collector.collect(cursor=None, limit=2)
    second = collector.collect(cursor=first.cursor, limit=2)

    assert [post.external_id for post in first.posts] == ["1", "2"]
    assert first.posts[0].platform == "fake:demo"
    assert first.posts[0].image_urls == ("https://img.example/1.jpg",)
    assert first.posts[1].created_at == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert [(post.platform, post.external_id) for post in second.posts] == [("reddit", "3")]
    assert collector.collect(cursor=second.cursor, limit=2).posts == []


def test_fails_like_a_real_source_when_told() -> None:
    with pytest.raises(RateLimitedError) as caught:
        build({"fail_with": "rate_limited"}).collect(cursor=None, limit=1)
    assert caught.value.retry_after_seconds == 30.0
    with pytest.raises(MalformedSourceError):
        build({"fail_with": "malformed"}).collect(cursor=None, limit=1)


def test_unknown_post_fields_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="colour"):
        validate_options("fake", {"posts": [{"external_id": "1", "colour": "red"}]})
