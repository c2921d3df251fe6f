"""The mastodon kind against recorded API responses served from 127.0.0.1."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from monitor.collectors.base import CollectorContext, build_collector, validate_options
from monitor.collectors.mastodon import MastodonCollector, MastodonOptions
from monitor.exceptions import ConfigurationError, MalformedSourceError
from monitor.http import HttpClient, SourceHTTPError

from .conftest import DATA, PlatformServer, Reply

TAG = "/api/v1/timelines/tag/bmw"
PAGE1_OLDEST = "112000000000001001"
NEWEST = "112000000000001003"
ORIGINAL = "112000000000000900"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def tag_collector(server: PlatformServer, http: HttpClient, **options: Any) -> MastodonCollector:
    settings = MastodonOptions(url=server.base_url, tag="#bmw", **options)
    return MastodonCollector(settings, http=http)


def serve_two_tag_pages(server: PlatformServer) -> None:
    next_link = f'<{server.url(TAG)}?max_id={PAGE1_OLDEST}>; rel="next", '
    prev_link = f'<{server.url(TAG)}?min_id={NEWEST}>; rel="prev"'
    server.add(TAG, Reply.json_file("mastodon_tag_page1.json", Link=next_link + prev_link))
    server.add(
        TAG,
        Reply.json_file("mastodon_tag_page2.json", Link=prev_link),
        query={"max_id": PAGE1_OLDEST},
    )


def test_pages_follow_link_headers_and_boosts_count_once(
    server: PlatformServer, http: HttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    serve_two_tag_pages(server)

    with caplog.at_level(logging.WARNING):
        batch = tag_collector(server, http).collect(cursor=None, limit=50)

    assert [post.external_id for post in batch.posts] == [
        NEWEST,
        ORIGINAL,
        PAGE1_OLDEST,
        "112000000000000998",
    ]
    assert batch.cursor == {"since_id": NEWEST}
    assert [request.query for request in server.requests_to(TAG)] == [
        {"limit": "40"},
        {"max_id": PAGE1_OLDEST},
    ]
    warnings = " ".join(record.getMessage() for record in caplog.records)
    assert "ftp://files.social.example/odd.jpg" in warnings
    assert "without id" in warnings


def test_status_fields_images_and_boosted_author(server: PlatformServer, http: HttpClient) -> None:
    serve_two_tag_pages(server)

    posts = {
        p.external_id: p for p in tag_collector(server, http).collect(cursor=None, limit=50).posts
    }

    first = posts[NEWEST]
    assert first.platform == f"mastodon:{server.base_url.removeprefix('http://')}"
    assert first.url == f"https://social.example/@ana/{NEWEST}"
    assert (first.author_handle, first.author_name, first.author_followers) == (
        "ana",
        "Ana Autos",
        1520,
    )
    assert first.text == 'Two logos in one picture & a "quote"\nsecond paragraph'
    assert first.created_at == datetime(2024, 5, 31, 10, 0, tzinfo=UTC)
    assert (first.language, first.reposts) == ("en", 2)
    assert first.image_urls == (
        "https://files.social.example/media_attachments/files/1003/original/a.jpg",
        "https://files.social.example/media_attachments/files/1004/small/b.png",
    )
    boosted = posts[ORIGINAL]
    assert (boosted.author_handle, boosted.author_name, boosted.author_followers) == (
        "ben@motors.example",
        "Ben",
        87,
    )
    assert (boosted.language, boosted.reposts) == ("de", 14)
    assert boosted.created_at == datetime(2024, 5, 28, 18, 0, tzinfo=UTC)
    words = posts[PAGE1_OLDEST]
    assert (words.text, words.image_urls, words.language, words.author_name) == (
        "cars\n\nOnly words, no pictures",
        (),
        None,
        None,
    )
    video = posts["112000000000000998"]
    assert video.image_urls == (
        "https://files.social.example/media_attachments/files/998/small/v.png",
        "https://motors.example/media/remote-only.jpg",
    )


def test_limit_stops_paging(server: PlatformServer, http: HttpClient) -> None:
    serve_two_tag_pages(server)

    batch = tag_collector(server, http).collect(cursor=None, limit=2)

    assert [post.external_id for post in batch.posts] == [NEWEST, ORIGINAL]
    assert [request.query for request in server.requests_to(TAG)] == [{"limit": "2"}]
    assert batch.cursor == {"since_id": NEWEST}


def test_second_run_asks_only_for_newer_statuses(server: PlatformServer, http: HttpClient) -> None:
    serve_two_tag_pages(server)
    older_link = f'<{server.url(TAG)}?max_id=112000000000001004>; rel="next"'
    server.add(
        TAG, Reply.json_file("mastodon_tag_newer.json", Link=older_link), query={"since_id": NEWEST}
    )
    server.add(TAG, Reply.json([]), query={"since_id": NEWEST, "max_id": "112000000000001004"})
    collector = tag_collector(server, http)

    first = collector.collect(cursor=None, limit=50)
    second = collector.collect(cursor=first.cursor, limit=50)

    assert [post.external_id for post in second.posts] == [
        "112000000000001005",
        "112000000000001004",
    ]
    assert second.cursor == {"since_id": "112000000000001005"}
    assert [request.query for request in server.requests_to(TAG)][-2:] == [
        {"limit": "40", "since_id": NEWEST},
        {"max_id": "112000000000001004", "since_id": NEWEST},
    ]


def test_without_link_headers_pages_by_max_id(server: PlatformServer, http: HttpClient) -> None:
    page1, page2 = load("mastodon_tag_page1.json"), load("mastodon_tag_page2.json")
    server.add("/api/v1/timelines/public", Reply.json([page1[1], page2[0]]))
    server.add(
        "/api/v1/timelines/public", Reply.json([page1[0]]), query={"max_id": "112000000000000999"}
    )
    options = MastodonOptions(url=server.base_url, timeline="public", only_media=True)

    batch = MastodonCollector(options, http=http).collect(cursor=None, limit=2)

    assert [post.external_id for post in batch.posts] == [ORIGINAL, NEWEST]
    queries = [request.query for request in server.requests_to("/api/v1/timelines/public")]
    assert queries == [
        {"limit": "2", "only_media": "true"},
        {"limit": "2", "only_media": "true", "max_id": "112000000000000999"},
    ]


def test_account_by_name_is_looked_up_and_the_token_sent(
    server: PlatformServer, http: HttpClient
) -> None:
    server.add("/api/v1/accounts/lookup", Reply.json_file("mastodon_account_lookup.json"))
    server.add("/api/v1/accounts/109/statuses", Reply.json_file("mastodon_tag_newer.json"))
    options = MastodonOptions(url=server.base_url + "/", account="@ana", token="s3cret")

    batch = MastodonCollector(options, http=http).collect(cursor=None, limit=10)

    assert len(batch.posts) == 2
    (lookup,) = server.requests_to("/api/v1/accounts/lookup")
    assert lookup.query == {"acct": "ana"}
    (statuses,) = server.requests_to("/api/v1/accounts/109/statuses")
    assert statuses.headers["Authorization"] == "Bearer s3cret"


def test_next_links_off_the_instance_are_not_followed(
    server: PlatformServer, http: HttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    link = '<https://elsewhere.example/api/v1/timelines/tag/bmw?max_id=1>; rel="next"'
    server.add(TAG, Reply.json_file("mastodon_tag_page1.json", Link=link))

    with caplog.at_level(logging.WARNING):
        batch = tag_collector(server, http, token="s3cret").collect(cursor=None, limit=50)

    assert len(batch.posts) == 3
    assert len(server.requests) == 1
    assert "off the instance" in caplog.text


def test_rate_limit_is_waited_out(
    server: PlatformServer, http: HttpClient, sleeps: list[float]
) -> None:
    server.add(
        TAG,
        Reply.json({"error": "Too many requests"}, 429, **{"Retry-After": "2"}),
        Reply.json_file("mastodon_tag_newer.json"),
    )

    batch = tag_collector(server, http).collect(cursor=None, limit=10)

    assert len(batch.posts) == 2
    assert sleeps == [2.0]


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (
            Reply(200, b'[{"id": "1", ', {"Content-Type": "application/json"}),
            MalformedSourceError,
            "JSON",
        ),
        (Reply.json({"error": "nope"}), MalformedSourceError, "list of statuses"),
        (Reply.json({"error": "Record not found"}, 404), SourceHTTPError, "404"),
    ],
)
def test_bad_answers_are_clear_errors(
    server: PlatformServer, http: HttpClient, reply: Reply, error: type[Exception], message: str
) -> None:
    server.add(TAG, reply)

    with pytest.raises(error, match=message):
        tag_collector(server, http).collect(cursor=None, limit=10)


def test_options_need_exactly_one_timeline(server: PlatformServer, http: HttpClient) -> None:
    stored = validate_options("mastodon", {"url": "https://social.example/", "tag": "#BMW"})
    assert stored == {"url": "https://social.example", "tag": "BMW", "only_media": False}
    with pytest.raises(ConfigurationError, match="exactly one"):
        validate_options("mastodon", {"url": "https://social.example", "tag": "a", "account": "1"})
    with pytest.raises(ConfigurationError, match="exactly one"):
        validate_options("mastodon", {"url": "https://social.example"})
    with pytest.raises(ConfigurationError, match="hashtag"):
        validate_options("mastodon", {"url": "https://social.example", "tag": "two words"})
    with pytest.raises(ConfigurationError, match="timeline"):
        validate_options("mastodon", {"url": "https://social.example", "timeline": "home"})
    server.add(TAG, Reply.json_file("mastodon_tag_newer.json"))
    context = CollectorContext(source_name="m", http=http)
    built = build_collector("mastodon", {"url": server.base_url, "tag": "bmw"}, context)
    assert len(built.collect(cursor=None, limit=10).posts) == 2
