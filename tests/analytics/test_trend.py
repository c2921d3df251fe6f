"""The chart's data: posts per day or week and platform, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

from monitor.analytics.report import build_report
from monitor.analytics.trend import OTHER, mentions_trend
from monitor.pipeline import Services
from monitor.storage.db import session_scope
from tests.analytics.factories import PhotoPost, store_photo_posts


def test_posts_per_day_split_by_platform_with_empty_days(services: Services) -> None:
    posts = [
        PhotoPost("1", [("acme", 0.9, None), ("acme", 0.8, None)], day=10, platform="reddit"),
        PhotoPost("2", [("acme", 0.9, None)], day=10, platform="bluesky", followers=50),
        PhotoPost("3", [("acme", 0.9, None)], day=12, platform="reddit", followers=None),
        PhotoPost("4", [("other", 0.9, None)], day=11, platform="reddit"),
    ]
    store_photo_posts(services, posts)
    with session_scope(services.sessions) as session:
        trend = mentions_trend(session=session, brand="acme")
    assert trend.period == "day"
    assert trend.platforms == ["reddit", "bluesky"]
    assert [(p.start, p.posts) for p in trend.periods] == [
        (date(2026, 11, 10), {"reddit": 1, "bluesky": 1}),  # two detections, one post
        (date(2026, 11, 11), {}),
        (date(2026, 11, 12), {"reddit": 1}),
    ]
    assert trend.reach == 150


def test_long_windows_are_drawn_per_week(services: Services) -> None:
    posts = [PhotoPost(str(n), [("acme", 0.9, None)], day=1 + n, month=11) for n in range(14)]
    store_photo_posts(services, posts)
    with session_scope(services.sessions) as session:
        trend = mentions_trend(
            session=session, brand="acme", since=date(2026, 8, 1), until=date(2026, 11, 30)
        )
    assert trend.period == "week"
    assert all(period.start.weekday() == 0 for period in trend.periods)
    assert trend.periods[0].start == date(2026, 7, 27)
    assert sum(period.total for period in trend.periods) == 14
    by_week = {p.start: p.total for p in trend.periods if p.total}
    assert by_week == {date(2026, 10, 26): 1, date(2026, 11, 2): 7, date(2026, 11, 9): 6}


def test_platforms_beyond_the_fifth_are_summed_as_other(services: Services) -> None:
    posts = [PhotoPost(str(n), [("acme", 0.9, None)], platform=f"p{n}") for n in range(7)]
    store_photo_posts(services, posts)
    with session_scope(services.sessions) as session:
        trend = mentions_trend(session=session, brand="acme")
    assert trend.platforms == ["p0", "p1", "p2", "p3", OTHER]
    assert trend.periods[0].posts[OTHER] == 3


def test_the_chart_counts_what_the_report_counts(services: Services) -> None:
    posts = [
        PhotoPost(str(n), [("acme", 0.9, None)] * (1 + n % 2), day=1 + n % 9, platform=f"p{n % 3}")
        for n in range(30)
    ]
    store_photo_posts(services, posts)
    with session_scope(services.sessions) as session:
        trend = mentions_trend(session=session, brand="acme")
        report = build_report(session=session, brand="acme")
    per_day = {p.start.isoformat(): p.total for p in trend.periods if p.total}
    assert per_day == {row["day"]: row["posts"] for row in report.by_day}
    per_platform = {
        name: sum(p.posts.get(name, 0) for p in trend.periods) for name in trend.platforms
    }
    assert per_platform == {row["platform"]: row["posts"] for row in report.platforms}
