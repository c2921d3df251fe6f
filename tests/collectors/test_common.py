"""Shared collector helpers: dates, the watermark, image URL hygiene, the kind registry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.collectors._common import Watermark, parse_datetime, web_image_urls
from monitor.collectors.base import known_kinds

MAY_31 = datetime(2024, 5, 31, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-31T10:00:00Z", MAY_31),
        ("2024-05-31T12:00:00+02:00", MAY_31),
        ("2024-05-31T10:00:00", MAY_31),
        ("2024-05-31T10:00:00.000000123Z", MAY_31),
        ("Fri, 31 May 2024 10:00:00 GMT", MAY_31),
        ("Fri, 31 May 2024 06:00:00 -0400", MAY_31),
        (1717149600, MAY_31),
        (1717149600.0, MAY_31),
        ("the day before yesterday", None),
        ("", None),
        (None, None),
        (True, None),
        (["2024-05-31"], None),
    ],
)
def test_parse_datetime(value: object, expected: datetime | None) -> None:
    assert parse_datetime(value) == expected


def test_watermark_takes_tied_items_once_and_nothing_older() -> None:
    earlier = datetime(2024, 5, 30, tzinfo=UTC)
    mark = Watermark().advanced([(earlier, "a"), (MAY_31, "b")])

    restored = Watermark.from_cursor(mark.to_cursor())

    assert restored == mark
    assert not restored.is_new(MAY_31, "b")
    assert restored.is_new(MAY_31, "c")
    assert not restored.is_new(earlier, "z")
    assert restored.is_older(earlier)
    assert restored.advanced([(MAY_31, "c")]).seen_at_newest == {"b", "c"}


def test_an_unreadable_cursor_starts_from_scratch() -> None:
    assert Watermark.from_cursor({"newest": "garbage", "seen_at_newest": []}) == Watermark()
    assert Watermark.from_cursor(None).to_cursor() is None


def test_web_image_urls_keeps_http_once_in_order() -> None:
    urls = web_image_urls(
        [
            "https://a.example/1.jpg",
            None,
            "data:image/png;base64,AA",
            " http://b.example/2.png ",
            "https://a.example/1.jpg",
            "/relative.jpg",
        ],
        post="test post",
    )

    assert urls == ("https://a.example/1.jpg", "http://b.example/2.png")


def test_every_built_in_kind_is_registered() -> None:
    kinds = known_kinds()

    for name in ("bluesky", "fake", "folder", "jsonl", "mastodon", "reddit", "rss"):
        assert kinds[name].name == name
        assert kinds[name].description
