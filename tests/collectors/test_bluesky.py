"""The bluesky kind against recorded AppView responses served from 127.0.0.1."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from monitor.collectors.base import validate_options
from monitor.collectors.bluesky import BlueskyCollector, BlueskyOptions
from monitor.exceptions import ConfigurationError, MalformedSourceError
from monitor.http import HttpClient

from .conftest import PlatformServer, Reply

AUTHOR_FEED = "/xrpc/app.bsky.feed.getAuthorFeed"
SEARCH = "/xrpc/app.bsky.feed.searchPosts"
ALICE = "did:plc:alice000000000000000000"
BOB = "did:plc:bob00000000000000000000"
GONE = "did:plc:gone0000000000000000000"


def uri(did: str, rkey: str) -> str:
    return f"at://{did}/app.bsky.feed.post/{rkey}"


def author_feed(server: PlatformServer, http: HttpClient) -> BlueskyCollector:
    options = BlueskyOptions(url=server.base_url, actor="@alice.bsky.social")
    return BlueskyCollector(options, http=http)


def serve_author_feed(server: PlatformServer, *first: Reply) -> None:
    server.add(AUTHOR_FEED, *first, Reply.json_file("bluesky_author_feed_page1.json"))
    server.add(
        AUTHOR_FEED,
        Reply.json_file("bluesky_author_feed_page2.json"),
        query={"cursor": "2024-05-31T08:00:00.000Z"},
    )


def test_author_feed_pages_and_reposts_are_credited_once(
    server: PlatformServer, http: HttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    serve_author_feed(server)

    with caplog.at_level(logging.WARNING):
        batch = author_feed(server, http).collect(cursor=None, limit=50)

    assert [post.external_id for post in batch.posts] == [
        uri(ALICE, "3kpin000000a0"),
        uri(ALICE, "3kimg000000a1"),
        uri(ALICE, "3kself00000a2"),
        uri(BOB, "3kquote0000b1"),
        uri(ALICE, "3kvideo0000a3"),
        uri(GONE, "3ktext00000c1"),
        uri(ALICE, "3kodd000000a4"),
    ]
    assert [request.query for request in server.requests_to(AUTHOR_FEED)] == [
        {"actor": "alice.bsky.social", "limit": "50"},
        {"actor": "alice.bsky.social", "limit": "50", "cursor": "2024-05-31T08:00:00.000Z"},
    ]
    assert batch.cursor == {
        "newest": "2024-05-31T10:00:00.000000+00:00",
        "seen_at_newest": [uri(ALICE, "3kimg000000a1")],
    }
    assert "ipfs://bafkreiodd" in caplog.text
    assert "without uri or date" in caplog.text


def test_images_authors_and_fields(server: PlatformServer, http: HttpClient) -> None:
    serve_author_feed(server)

    posts = {
        p.external_id: p for p in author_feed(server, http).collect(cursor=None, limit=50).posts
    }

    images = posts[uri(ALICE, "3kimg000000a1")]
    assert images.platform == "bluesky"
    assert images.url == "https://bsky.app/profile/alice.bsky.social/post/3kimg000000a1"
    assert images.image_urls == (
        f"https://cdn.bsky.app/img/feed_fullsize/plain/{ALICE}/bafkreione@jpeg",
        f"https://cdn.bsky.app/img/feed_fullsize/plain/{ALICE}/bafkreitwo@jpeg",
    )
    assert (images.author_handle, images.author_name, images.author_followers) == (
        "alice.bsky.social",
        "Alice Cars",
        2048,
    )
    assert (images.text, images.language, images.reposts) == ("Two badges spotted today", "en", 4)
    assert images.created_at == datetime(2024, 5, 31, 9, 59, 58, tzinfo=UTC)
    quote = posts[uri(BOB, "3kquote0000b1")]
    assert quote.image_urls == (
        f"https://cdn.bsky.app/img/feed_fullsize/plain/{BOB}/bafkreiquote@jpeg",
    )
    assert (quote.author_handle, quote.author_name, quote.author_followers, quote.language) == (
        "bob.example.com",
        None,
        None,
        "de",
    )
    video = posts[uri(ALICE, "3kvideo0000a3")]
    assert video.image_urls == (f"https://video.bsky.app/watch/{ALICE}/bafkreivid/thumbnail.jpg",)
    orphan = posts[uri(GONE, "3ktext00000c1")]
    assert orphan.author_handle == GONE
    assert orphan.url == f"https://bsky.app/profile/{GONE}/post/3ktext00000c1"
    assert orphan.created_at == datetime(2024, 5, 29, 11, 0, tzinfo=UTC)
    assert (orphan.image_urls, orphan.language) == ((), None)


def test_second_run_stops_at_known_items_but_not_at_the_pin(
    server: PlatformServer, http: HttpClient
) -> None:
    serve_author_feed(server)
    collector = author_feed(server, http)
    first = collector.collect(cursor=None, limit=50)
    server.routes.clear()
    server.add(AUTHOR_FEED, Reply.json_file("bluesky_author_feed_later.json"))

    second = collector.collect(cursor=first.cursor, limit=50)

    assert [post.external_id for post in second.posts] == [uri(ALICE, "3knew000000a5")]
    assert len(server.requests_to(AUTHOR_FEED)) == 3


def test_search_pages_with_cursor(
    server: PlatformServer, http: HttpClient, sleeps: list[float]
) -> None:
    server.add(SEARCH, Reply(500, b"oops"), Reply.json_file("bluesky_search_page1.json"))
    server.add(SEARCH, Reply.json_file("bluesky_search_page2.json"), query={"cursor": "2"})
    options = BlueskyOptions(url=server.base_url, query=" bmw logo ")

    batch = BlueskyCollector(options, http=http).collect(cursor=None, limit=10)

    assert [post.external_id for post in batch.posts] == [
        uri(ALICE, "3kimg000000a1"),
        uri(BOB, "3kquote0000b1"),
        uri(ALICE, "3kvideo0000a3"),
    ]
    assert [request.query for request in server.requests_to(SEARCH)][1:] == [
        {"q": "bmw logo", "sort": "latest", "limit": "10"},
        {"q": "bmw logo", "sort": "latest", "limit": "10", "cursor": "2"},
    ]
    assert sleeps == [0.5]


def test_limit_stops_early(server: PlatformServer, http: HttpClient) -> None:
    serve_author_feed(server)

    batch = author_feed(server, http).collect(cursor=None, limit=3)

    assert len(batch.posts) == 3
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply.json({"feed": "nope"}), "no 'feed' list"),
        (Reply.json(["a", "list"]), "did not return an object"),
        (Reply(200, b"<html>", {"Content-Type": "text/html"}), "did not answer with JSON"),
    ],
)
def test_bad_answers_are_malformed(
    server: PlatformServer, http: HttpClient, reply: Reply, message: str
) -> None:
    server.add(AUTHOR_FEED, reply)

    with pytest.raises(MalformedSourceError, match=message):
        author_feed(server, http).collect(cursor=None, limit=5)


def test_options() -> None:
    assert validate_options("bluesky", {"actor": "@alice.bsky.social"}) == {
        "url": "https://public.api.bsky.app",
        "actor": "alice.bsky.social",
    }
    with pytest.raises(ConfigurationError, match="exactly one"):
        validate_options("bluesky", {"actor": "a.bsky.social", "query": "bmw"})
    with pytest.raises(ConfigurationError, match="exactly one"):
        validate_options("bluesky", {})
