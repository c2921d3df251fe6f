"""The rss kind against recorded RSS 2.0 and Atom feeds served from 127.0.0.1."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from monitor.collectors.base import CollectorContext, build_collector, validate_options
from monitor.collectors.rss import RssCollector
from monitor.domain import CollectedPost
from monitor.exceptions import ConfigurationError, MalformedSourceError, SourceUnavailableError
from monitor.http import HttpClient

from .conftest import PlatformServer, Reply

RSS = "application/rss+xml"


def collect_all(server: PlatformServer, http: HttpClient, path: str) -> dict[str, CollectedPost]:
    batch = RssCollector(server.url(path), http=http).collect(cursor=None, limit=50)
    return {post.external_id: post for post in batch.posts}


def test_rss_images_from_enclosures_media_and_html(
    server: PlatformServer, http: HttpClient
) -> None:
    server.add("/feed.xml", Reply.file("rss2_media.xml", RSS))

    posts = collect_all(server, http, "/feed.xml")

    assert list(posts) == [
        "news-1001",
        "news-1002",
        "news-1003",
        "news-1004",
        "news-1005",
        "https://news.example.com/2024/06/video",
    ]
    assert posts["news-1001"].image_urls == ("https://cdn.news.example.com/coupe.jpg",)
    assert posts["news-1002"].image_urls == ("https://cdn.news.example.com/race-full.jpg",)
    assert posts["news-1003"].image_urls == ("https://cdn.news.example.com/group-large.jpg",)
    assert posts["news-1005"].image_urls == (
        "https://cdn.news.example.com/encoded.webp",
        "https://cdn.news.example.com/protocol-relative.jpg",
    )
    video = posts["https://news.example.com/2024/06/video"]
    assert video.image_urls == ("https://cdn.news.example.com/launch-thumb.jpg",)


def test_rss_relative_urls_entities_and_metadata(
    server: PlatformServer, http: HttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.add("/feed.xml", Reply.file("rss2_media.xml", RSS))

    with caplog.at_level(logging.WARNING):
        posts = collect_all(server, http, "/feed.xml")

    cafe = posts["news-1004"]
    assert cafe.url == "https://news.example.com/2024/05/html-images"
    assert cafe.image_urls == (
        "https://news.example.com/img/bike-one.png",
        "https://news.example.com/2024/05/pics/bike-two.jpg",
    )
    assert cafe.text == ("Café racers & more\n\nSpotted at the café — two classic bikes.")
    assert any("data:image/gif" in record.getMessage() for record in caplog.records)
    assert any("without guid or link" in record.getMessage() for record in caplog.records)
    first = posts["news-1001"]
    assert first.platform == f"rss:{server.url('/feed.xml')}"
    assert first.created_at == datetime(2024, 5, 29, 8, 0, tzinfo=UTC)
    assert first.author_handle == "editor@news.example.com (Eda Editor)"
    assert first.language == "en-gb"
    assert posts["news-1002"].author_name == "Rita Reporter"
    assert posts["news-1005"].text == "Full content module\n\nThe whole story."


def test_atom_xml_base_html_and_xhtml_content(server: PlatformServer, http: HttpClient) -> None:
    server.add("/atom.xml", Reply.file("atom.xml", "application/atom+xml"))

    posts = collect_all(server, http, "/atom.xml")

    felgen = posts["tag:blog.example.org,2024:entry-1"]
    assert felgen.url == "https://blog.example.org/posts/felgen"
    assert felgen.image_urls == (
        "https://blog.example.org/posts/media/felgen.png",
        "https://blog.example.org/posts/media/felgen-detail.jpg",
        "https://cdn.example.net/abs.jpg",
    )
    assert felgen.text == "Neue Felgen & Reifen\n\nKurz: neue Felgen."
    assert felgen.created_at == datetime(2024, 5, 30, 6, 0, tzinfo=UTC)
    assert (felgen.author_name, felgen.language) == ("Jonas Schrauber", "de")
    xhtml = posts["tag:blog.example.org,2024:entry-2"]
    assert xhtml.image_urls == ("https://mirror.example.net/archive/treffen.jpg",)
    assert xhtml.text == "XHTML content\n\nBilder vom Treffen."
    video = posts["yt:video:abc123"]
    assert video.image_urls == ("https://i.video.example.com/vi/abc123/hqdefault.jpg",)
    assert video.language == "en"


@pytest.mark.parametrize("name", ["lying_utf8_is_cp1252.xml", "lying_latin1_is_utf8.xml"])
def test_feeds_lying_about_their_encoding_are_read_right(
    server: PlatformServer, http: HttpClient, name: str
) -> None:
    server.add("/feed.xml", Reply.file(name, "application/xml"))

    (post,) = collect_all(server, http, "/feed.xml").values()

    assert post.text == "Öl & Bremsen für den Café-Racer \u2013 günstig\n\nPreis: 25 €"
    assert post.image_urls == ("https://garage.example.de/bilder/öl.jpg",)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("entity_bomb.xml", "declares XML entities"),
        ("external_entity.xml", "declares XML entities"),
        ("not_a_feed.html", "is not XML"),
        ("sitemap.xml", "not an RSS or Atom feed"),
    ],
)
def test_hostile_or_wrong_documents_are_malformed(
    server: PlatformServer, http: HttpClient, name: str, message: str
) -> None:
    server.add("/feed.xml", Reply.file(name, "application/xml"))

    with pytest.raises(MalformedSourceError, match=message):
        RssCollector(server.url("/feed.xml"), http=http).collect(cursor=None, limit=10)


def test_second_run_yields_only_new_entries(server: PlatformServer, http: HttpClient) -> None:
    server.add(
        "/feed.xml",
        Reply.file("rss2_media.xml", RSS),
        Reply.file("rss2_media_later.xml", RSS),
    )
    collector = RssCollector(server.url("/feed.xml"), http=http)

    first = collector.collect(cursor=None, limit=50)
    second = collector.collect(cursor=first.cursor, limit=50)

    assert len(first.posts) == 6
    assert [post.external_id for post in second.posts] == ["news-1008", "news-1007"]


def test_limit_takes_the_oldest_and_the_rest_follows(
    server: PlatformServer, http: HttpClient
) -> None:
    server.add("/feed.xml", Reply.file("rss2_media.xml", RSS))
    collector = RssCollector(server.url("/feed.xml"), http=http)

    first = collector.collect(cursor=None, limit=4)
    second = collector.collect(cursor=first.cursor, limit=4)
    third = collector.collect(cursor=second.cursor, limit=4)

    assert [post.external_id for post in first.posts] == [
        "news-1001",
        "news-1002",
        "news-1003",
        "news-1004",
    ]
    assert len(second.posts) == 2
    assert third.posts == []


def test_undated_entries_are_reported_once(server: PlatformServer, http: HttpClient) -> None:
    feed = (
        b'<rss version="2.0"><channel><link>https://x.example/</link>'
        b"<item><guid>a</guid><title>no date</title></item>"
        b"<item><guid>b</guid><pubDate>Sat, 01 Jun 2024 06:00:00 GMT</pubDate></item>"
        b"</channel></rss>"
    )
    server.add("/feed.xml", Reply(200, feed, {"Content-Type": RSS}))
    collector = RssCollector(server.url("/feed.xml"), http=http)

    first = collector.collect(cursor=None, limit=10)
    second = collector.collect(cursor=first.cursor, limit=10)

    assert [post.external_id for post in first.posts] == ["a", "b"]
    assert first.posts[0].created_at is None
    assert second.posts == []


def test_server_errors_are_retried_then_succeed(
    server: PlatformServer, http: HttpClient, sleeps: list[float]
) -> None:
    server.add(
        "/feed.xml",
        Reply(503, b"busy"),
        Reply(502, b"bad gateway"),
        Reply.file("rss2_media.xml", RSS),
    )

    posts = collect_all(server, http, "/feed.xml")

    assert len(posts) == 6
    assert sleeps == [0.5, 1.0]


def test_a_hanging_server_is_unavailable(silent_server: str) -> None:
    quick = HttpClient(timeout_seconds=0.3, allow_private_hosts=True, sleep=lambda _: None)

    with pytest.raises(SourceUnavailableError, match=r"answer within 0\.3 seconds"):
        RssCollector(f"{silent_server}/feed.xml", http=quick).collect(cursor=None, limit=5)
    quick.close()


def test_options_need_an_http_url(server: PlatformServer, http: HttpClient) -> None:
    server.add("/feed.xml", Reply.file("atom.xml", "application/atom+xml"))
    stored = validate_options("rss", {"url": server.url("/feed.xml")})
    built = build_collector("rss", stored, CollectorContext(source_name="blog", http=http))

    assert len(built.collect(cursor=None, limit=10).posts) == 3
    with pytest.raises(ConfigurationError, match="absolute http"):
        validate_options("rss", {"url": "ftp://example.com/feed"})


def test_tracking_pixels_ads_and_avatars_are_dropped_and_counted(
    server: PlatformServer, http: HttpClient
) -> None:
    from monitor.collectors.junk import drop_non_content

    server.add("/feed.xml", Reply.file("rss2_wordpress_feedburner.xml", RSS))
    batch = RssCollector(server.url("/feed.xml"), http=http).collect(cursor=None, limit=50)

    posts, skipped = drop_non_content(batch.posts)

    uploads = "https://i0.wp.com/garagenotes.example.org/wp-content/uploads/2026/11"
    assert [post.image_urls for post in posts] == [
        (f"{uploads}/coupe-front.jpg", f"{uploads}/coupe-side.jpg?w=1200&ssl=1"),
        ("https://garagenotes.example.org/wp-content/uploads/2026/11/parts.png",),
    ]
    assert skipped.by_reason == {
        "a declared 1x1 or 2x2 image": 4,  # FeedBurner twice, pixel.wp.com, a 1x1 media:content
        "a FeedBurner share button": 2,
        "a WordPress tracking pixel": 1,
        "an ad": 1,
        "a spacer or tracking pixel": 1,
        "an avatar": 2,
    }
    assert skipped.total == 11
