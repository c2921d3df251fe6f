"""The reddit kind against recorded /r/NAME/new.json listings served from 127.0.0.1."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from monitor.collectors.base import validate_options
from monitor.collectors.reddit import RedditCollector, RedditOptions
from monitor.domain import CollectedPost
from monitor.exceptions import ConfigurationError, MalformedSourceError
from monitor.http import HttpClient

from .conftest import PlatformServer, Reply

LISTING = "/r/BMW/new.json"


def collector(server: PlatformServer, http: HttpClient) -> RedditCollector:
    return RedditCollector(RedditOptions(subreddit="r/BMW", url=server.base_url), http=http)


def serve_two_pages(server: PlatformServer, *first_page: Reply) -> None:
    server.add(LISTING, *first_page, Reply.json_file("reddit_new_page1.json"))
    server.add(LISTING, Reply.json_file("reddit_new_page2.json"), query={"after": "t3_c3"})


def by_id(posts: list[CollectedPost]) -> dict[str, CollectedPost]:
    return {post.external_id: post for post in posts}


def test_pages_with_after_until_the_listing_ends(server: PlatformServer, http: HttpClient) -> None:
    serve_two_pages(server)

    batch = collector(server, http).collect(cursor=None, limit=50)

    assert [post.external_id for post in batch.posts] == [
        "t3_c1",
        "t3_c2",
        "t3_c3",
        "t3_c4",
        "t3_c5",
        "t3_c6",
        "t3_c7",
        "t3_c9",
    ]
    assert [request.query for request in server.requests_to(LISTING)] == [
        {"limit": "50"},
        {"limit": "50", "after": "t3_c3"},
    ]
    assert batch.cursor == {
        "newest": "2024-05-31T10:00:00.000000+00:00",
        "seen_at_newest": ["t3_c1"],
    }


def test_images_from_links_galleries_previews_and_crossposts(
    server: PlatformServer, http: HttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    serve_two_pages(server)

    with caplog.at_level(logging.WARNING):
        posts = by_id(collector(server, http).collect(cursor=None, limit=50).posts)

    assert posts["t3_c1"].image_urls == ("https://i.redd.it/m2badge.jpg",)
    assert posts["t3_c2"].image_urls == (
        "https://preview.redd.it/ddd444.png?width=1920&format=png&auto=webp&s=4",
        "https://preview.redd.it/aaa111.jpg?width=4000&format=pjpg&auto=webp&s=2",
        "https://i.redd.it/bbb222.gif",
    )
    assert posts["t3_c3"].image_urls == (
        "https://external-preview.redd.it/press.jpg?auto=webp&s=ccc",
    )
    assert posts["t3_c4"].image_urls == ()
    assert posts["t3_c5"].image_urls == ("https://i.imgur.com/xyz.png",)
    assert posts["t3_c6"].image_urls == ("https://i.redd.it/original.png",)
    assert posts["t3_c9"].image_urls == ()
    assert "javascript:alert(1)" in caplog.text
    assert "without date or id" in caplog.text


def test_post_fields_and_missing_ones(server: PlatformServer, http: HttpClient) -> None:
    serve_two_pages(server)

    posts = by_id(collector(server, http).collect(cursor=None, limit=50).posts)

    first = posts["t3_c1"]
    assert first.platform == "reddit"
    assert (first.url or "").startswith(f"{server.base_url}/r/BMW/comments/c1/")
    assert (first.author_handle, first.author_followers, first.author_name) == (
        "driver_dan",
        None,
        None,
    )
    assert first.text == "My new M2 & its badge"
    assert first.created_at == datetime(2024, 5, 31, 10, 0, tzinfo=UTC)
    assert first.reposts == 2
    text_post = posts["t3_c4"]
    assert (text_post.author_handle, text_post.text) == (
        None,
        "Which oil do you use?\n\nAsking for a friend <3",
    )
    bare = posts["t3_c7"]
    assert (bare.url, bare.author_handle, bare.text, bare.reposts) == (None, None, None, None)


def test_second_run_stops_at_the_first_post_already_seen(
    server: PlatformServer, http: HttpClient
) -> None:
    serve_two_pages(server)
    reddit = collector(server, http)
    first = reddit.collect(cursor=None, limit=50)
    server.routes.clear()
    server.add(LISTING, Reply.json_file("reddit_new_later.json"))

    second = reddit.collect(cursor=first.cursor, limit=50)

    assert [post.external_id for post in second.posts] == ["t3_n2", "t3_n1"]
    assert second.posts[0].image_urls == ("https://i.redd.it/fresher.webp",)
    assert server.requests_to(LISTING)[-1].query == {"limit": "50"}
    assert len(server.requests_to(LISTING)) == 3


def test_limit_smaller_than_a_page(server: PlatformServer, http: HttpClient) -> None:
    serve_two_pages(server)

    batch = collector(server, http).collect(cursor=None, limit=2)

    assert [post.external_id for post in batch.posts] == ["t3_c1", "t3_c2"]
    assert [request.query for request in server.requests] == [{"limit": "2"}]


def test_rate_limits_and_server_errors_are_retried(
    server: PlatformServer, http: HttpClient, sleeps: list[float]
) -> None:
    serve_two_pages(
        server,
        Reply.json({"message": "Too Many Requests", "error": 429}, 429, **{"Retry-After": "4"}),
        Reply(503, b"<html>upstream error</html>", {"Content-Type": "text/html"}),
    )

    batch = collector(server, http).collect(cursor=None, limit=3)

    assert len(batch.posts) == 3
    assert sleeps == [4.0, 1.0]


def test_unknown_subreddit_redirected_to_search_is_an_error(
    server: PlatformServer, http: HttpClient
) -> None:
    server.add(LISTING, Reply(302, b"", {"Location": "/subreddits/search.json?q=BMW"}))
    server.add("/subreddits/search.json", Reply.json({"kind": "Listing", "data": {"children": []}}))

    with pytest.raises(MalformedSourceError, match="does not seem to exist"):
        collector(server, http).collect(cursor=None, limit=5)


def test_something_else_than_a_listing_is_malformed(
    server: PlatformServer, http: HttpClient
) -> None:
    server.add(LISTING, Reply.json({"kind": "t3", "data": {}}))

    with pytest.raises(MalformedSourceError, match="not return a Reddit listing"):
        collector(server, http).collect(cursor=None, limit=5)


def test_options() -> None:
    assert validate_options("reddit", {"subreddit": "/r/cars/"}) == {
        "subreddit": "cars",
        "url": "https://www.reddit.com",
    }
    with pytest.raises(ConfigurationError, match="subreddit name"):
        validate_options("reddit", {"subreddit": "no spaces please"})
