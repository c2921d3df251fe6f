"""Posts showing a brand per day (or per week, for long windows), split by platform.

The HTML report's chart needs the platform split the brand report does not carry; one grouped query
gives posts and reach (followers summed over the posts) per day and platform, and weeks are summed
from days here, so a post counts once in its week as it does in its day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.storage.tables import PostBrand

WEEKLY_AFTER_DAYS = 92
"""Windows longer than this are drawn per week: daily bars that thin say nothing."""

MAX_PLATFORMS = 5
"""Platforms drawn on their own; the rest are summed as ``other``."""

OTHER = "other"


@dataclass(frozen=True)
class TrendPeriod:
    """One bar of the chart: posts per platform in one day or week."""

    start: date
    posts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Posts in the period, all platforms."""
        return sum(self.posts.values())


@dataclass(frozen=True)
class Trend:
    """The chart's data: ``period`` is ``day`` or ``week`` (weeks start on Monday)."""

    period: str
    platforms: list[str]
    periods: list[TrendPeriod]
    reach: int


def mentions_trend(
    *, session: Session, brand: str, since: date | None = None, until: date | None = None
) -> Trend:
    """Posts showing ``brand`` per day or week and platform, between inclusive days (UTC)."""
    rows = _daily_rows(session=session, brand=brand, since=since, until=until)
    if not rows:
        return Trend(period="day", platforms=[], periods=[], reach=0)
    first = since or min(day for day, _, _, _ in rows)
    last = until or max(day for day, _, _, _ in rows)
    weekly = (last - first).days + 1 > WEEKLY_AFTER_DAYS
    platforms = _drawn_platforms(rows)
    buckets: dict[date, dict[str, int]] = {}
    for day, platform, posts, _ in rows:
        start = day - timedelta(days=day.weekday()) if weekly else day
        name = platform if platform in platforms else OTHER
        bucket = buckets.setdefault(start, {})
        bucket[name] = bucket.get(name, 0) + posts
    step = timedelta(days=7 if weekly else 1)
    start = first - timedelta(days=first.weekday()) if weekly else first
    periods = []
    while start <= last:
        periods.append(TrendPeriod(start=start, posts=buckets.get(start, {})))
        start += step
    drawn = platforms + ([OTHER] if any(OTHER in p.posts for p in periods) else [])
    return Trend(
        period="week" if weekly else "day",
        platforms=drawn,
        periods=periods,
        reach=sum(reach for *_, reach in rows),
    )


def _daily_rows(
    *, session: Session, brand: str, since: date | None, until: date | None
) -> list[tuple[date, str, int, int]]:
    """(day, platform, posts, reach) rows; a post showing the brand several times counts once.

    From the per-post summary (``post_brands``: one row per post and brand, its day, platform and
    followers copied in, kept exact as classifications are written): no join of posts or detections.
    """
    conditions = [PostBrand.brand == brand]
    if since is not None:
        conditions.append(PostBrand.posted_day >= since)
    if until is not None:
        conditions.append(PostBrand.posted_day <= until)
    query = (
        select(
            PostBrand.posted_day,
            PostBrand.platform,
            func.count(),
            func.coalesce(func.sum(PostBrand.author_followers), 0),
        )
        .where(*conditions)
        .group_by(PostBrand.posted_day, PostBrand.platform)
    )
    return [
        (as_date(day), platform, int(posts), int(reach or 0))
        for day, platform, posts, reach in session.execute(query)
    ]


def _drawn_platforms(rows: list[tuple[date, str, int, int]]) -> list[str]:
    """The platforms with the most posts, most first; ``other`` takes the rest."""
    totals: dict[str, int] = {}
    for _, platform, posts, _ in rows:
        totals[platform] = totals.get(platform, 0) + posts
    ranked = sorted(totals, key=lambda name: (-totals[name], name))
    if len(ranked) <= MAX_PLATFORMS:
        return ranked
    return ranked[: MAX_PLATFORMS - 1]


def as_date(value: Any) -> date:
    """A day as the database returns it: SQLite gives text, PostgreSQL a date."""
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


__all__ = ["Trend", "TrendPeriod", "as_date", "mentions_trend"]
