"""The brand report an analyst runs: how often, where, shown by whom, and how sure.

Every figure is read from the summary tables that the write path keeps exact
(``monitor.storage.summaries``), one query per section, filtered by brand and UTC day on their
primary keys; nothing is counted row by row here. The counting units are the README's: a detection
counts once however many posts show its image, a post counts once per brand it shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, desc, func, select, text, tuple_

from monitor.analytics import views
from monitor.exceptions import UnknownBrandError
from monitor.storage.counting import KNOWN_BRANDS_SQL, NO_PREVIOUS_DAY, PROBABILITY_BINS

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

SCAN_LIMIT = 50_000
"""Posts in a window up to which its top accounts are found by grouping its posts directly."""

BrandAccountTotal = views.brand_account_totals.c
BrandCoendorsementTotal = views.brand_coendorsement_totals.c
BrandDetectionDay = views.brand_detection_days.c
BrandPostDay = views.brand_post_days.c
Post = views.posts.c
PostBrand = views.post_brands.c
Source = views.sources.c


@dataclass
class BrandReport:
    """Everything ``monitor report --brand`` shows; ``to_dict`` is its JSON form."""

    brand: str
    since: date | None
    until: date | None
    detections: int
    posts: int
    image_only_posts: int
    image_only_share: float | None
    by_day: list[dict[str, Any]] = field(default_factory=list)
    top_authors: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    platforms: list[dict[str, Any]] = field(default_factory=list)
    probability_histogram: list[dict[str, Any]] = field(default_factory=list)
    top_posts: list[dict[str, Any]] = field(default_factory=list)
    co_endorsed_brands: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (dates as ISO strings)."""
        data = asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        data["until"] = self.until.isoformat() if self.until else None
        return data


def resolve_brand(
    *, session: Session | Connection, brand: str, model_labels: Sequence[str] = ()
) -> str:
    """The stored spelling of ``brand`` (case-insensitive), or UnknownBrandError listing the known."""
    known = sorted(set(session.scalars(text(KNOWN_BRANDS_SQL))) | set(model_labels))
    for candidate in known:
        if candidate.casefold() == brand.casefold():
            return candidate
    raise UnknownBrandError(brand, known)


def build_report(
    *,
    session: Session | Connection,
    brand: str,
    since: date | None = None,
    until: date | None = None,
    top: int = 10,
    model_labels: Sequence[str] = (),
    scan_limit: int = SCAN_LIMIT,
) -> BrandReport:
    """The report for one brand between ``since`` and ``until`` (both inclusive days, UTC).

    ``scan_limit``: a window with more posts than this finds its top accounts from the accounts'
    whole-history totals down (see ``_top_authors_from_totals``) instead of grouping every post.
    """
    brand = resolve_brand(session=session, brand=brand, model_labels=model_labels)
    window = Window(brand=brand, since=since, until=until)
    histogram = _histogram(session=session, window=window)
    detections = sum(row["detections"] for row in histogram)
    posts, image_only = _post_totals(session=session, window=window)
    return BrandReport(
        brand=brand,
        since=since,
        until=until,
        detections=detections,
        posts=posts,
        image_only_posts=image_only,
        image_only_share=round(image_only / posts, 4) if posts else None,
        by_day=_by_day(session=session, window=window),
        top_authors=_top_authors(session=session, window=window, top=top, scan=posts <= scan_limit),
        sources=_sources(session=session, window=window),
        platforms=_platforms(session=session, window=window),
        probability_histogram=histogram,
        top_posts=_top_posts(session=session, window=window, top=top),
        co_endorsed_brands=_co_endorsed(session=session, brand=brand, top=top),
    )


@dataclass(frozen=True)
class Window:
    """One brand between two inclusive UTC days (either open)."""

    brand: str
    since: date | None
    until: date | None

    @property
    def whole_history(self) -> bool:
        return self.since is None and self.until is None

    def days(self, brand_column: Any, day_column: Any) -> list[Any]:
        """Conditions selecting the brand's rows whose day is in the window."""
        conditions = [brand_column == self.brand]
        if self.since is not None:
            conditions.append(day_column >= self.since)
        if self.until is not None:
            conditions.append(day_column <= self.until)
        return conditions

    def first_time_shown(self) -> Any:
        """Detection-day rows that count a detection once: its image not shown earlier in it."""
        first_day = self.since or NO_PREVIOUS_DAY + timedelta(days=1)
        return BrandDetectionDay.previous_day < first_day


def _histogram(*, session: Session | Connection, window: Window) -> list[dict[str, Any]]:
    """Detections per probability bin; their sum is the report's detections."""
    table = BrandDetectionDay
    rows = {
        probability_bin: count
        for probability_bin, count in session.execute(
            select(table.probability_bin, func.sum(table.detections))
            .where(*window.days(table.brand, table.day), window.first_time_shown())
            .group_by(table.probability_bin)
        ).tuples()
    }
    return [
        {"from": low, "to": min(high, 1.0), "detections": int(rows.get(index) or 0)}
        for index, (low, high) in enumerate(pairwise(PROBABILITY_BINS))
    ]


def _post_totals(*, session: Session | Connection, window: Window) -> tuple[int, int]:
    table = BrandPostDay
    posts, image_only = session.execute(
        select(func.sum(table.posts), func.sum(table.image_only_posts)).where(
            *window.days(table.brand, table.day)
        )
    ).one()
    return int(posts or 0), int(image_only or 0)


def _by_day(*, session: Session | Connection, window: Window) -> list[dict[str, Any]]:
    """Per day: detections shown that day (each once) and posts showing the brand."""
    detected = (
        select(
            BrandDetectionDay.day.label("day"),
            func.sum(BrandDetectionDay.detections).label("detections"),
        )
        .where(*window.days(BrandDetectionDay.brand, BrandDetectionDay.day))
        .group_by(BrandDetectionDay.day)
        .subquery()
    )
    posted = (
        select(BrandPostDay.day.label("day"), func.sum(BrandPostDay.posts).label("posts"))
        .where(*window.days(BrandPostDay.brand, BrandPostDay.day))
        .group_by(BrandPostDay.day)
        .having(func.sum(BrandPostDay.posts) > 0)
        .subquery()
    )
    query = (
        select(posted.c.day, detected.c.detections, posted.c.posts)
        .join(detected, detected.c.day == posted.c.day)
        .order_by(posted.c.day)
    )
    return [
        {"day": str(day), "detections": int(detections), "posts": int(posts)}
        for day, detections, posts in session.execute(query).tuples()
    ]


def _top_authors(
    *, session: Session | Connection, window: Window, top: int, scan: bool
) -> list[dict[str, Any]]:
    """Accounts by posts showing the brand, with follower count and reach (sum over those posts).

    The whole history reads the per-account totals. A window with few posts (``scan``) groups them
    from ``post_brands`` (an index on brand and day that also holds the account columns); a longer
    one finds its leaders from the totals down.
    """
    if not window.whole_history and not scan:
        return _top_authors_from_totals(session=session, window=window, top=top)
    if window.whole_history:
        table = BrandAccountTotal
        reach = case((table.posts_with_followers > 0, table.reach), else_=None)
        query: Any = (
            select(table.author_handle, table.platform, table.posts, table.followers, reach)
            .where(table.brand == window.brand, table.posts > 0)
            .order_by(desc(table.posts), table.author_handle, table.platform)
            .limit(top)
        )
    else:
        posts = func.count()
        query = (
            select(
                PostBrand.author_handle,
                PostBrand.platform,
                posts.label("posts"),
                func.max(PostBrand.author_followers),
                func.sum(PostBrand.author_followers),
            )
            .where(
                *window.days(PostBrand.brand, PostBrand.posted_day),
                PostBrand.author_handle.is_not(None),
            )
            .group_by(PostBrand.author_handle, PostBrand.platform)
            .order_by(desc("posts"), PostBrand.author_handle, PostBrand.platform)
            .limit(top)
        )
    return [_account_row(row) for row in session.execute(query)]


def _top_authors_from_totals(
    *, session: Session | Connection, window: Window, top: int
) -> list[dict[str, Any]]:
    """The exact top accounts of a long window, without grouping all of its posts.

    No account has more posts in a window than in the whole history. So candidates are read in
    order of their whole-history posts (an index on ``brand_account_totals``), each one's posts in
    the window counted by an index range on ``post_brands`` (brand, account, day), in batches that
    grow fourfold, until the ``top``-th best window count exceeds every remaining candidate's total.
    Activity is heavy-tailed, so this stops after a few dozen candidates for long windows.
    """
    totals = BrandAccountTotal
    in_window = (
        select(func.count())
        .select_from(views.post_brands)
        .where(
            PostBrand.platform == totals.platform,
            PostBrand.author_handle == totals.author_handle,
            *window.days(PostBrand.brand, PostBrand.posted_day),
        )
        .scalar_subquery()
    )
    seen: dict[tuple[str, str], int] = {}
    offset, batch = 0, top
    while True:
        rows = session.execute(
            select(totals.author_handle, totals.platform, totals.posts, in_window)
            .where(totals.brand == window.brand, totals.posts > 0)
            .order_by(desc(totals.posts), totals.author_handle, totals.platform)
            .offset(offset)
            .limit(batch)
        ).all()
        seen.update({(handle, platform): count for handle, platform, _, count in rows if count})
        counts = sorted(seen.values(), reverse=True)
        if len(rows) < batch or (len(counts) >= top and counts[top - 1] > rows[-1][2]):
            break
        offset, batch = offset + batch, batch * 4
    # Every account that could tie with the top-th is among those seen; SQL orders the ties, so
    # the order is the same as when the window's posts are grouped directly.
    cut = counts[top - 1] if len(counts) >= top else 1
    leaders = [account for account, count in seen.items() if count >= cut]
    return _account_figures(session=session, window=window, accounts=leaders, top=top)


def _account_figures(
    *, session: Session | Connection, window: Window, accounts: list[tuple[str, str]], top: int
) -> list[dict[str, Any]]:
    """The given accounts' posts, followers and reach in the window, the ``top`` first.

    Each figure is an index range per account on ``post_brands`` (brand, account, day), not a pass
    over the window's posts.
    """
    if not accounts:
        return []
    totals = BrandAccountTotal

    def over_window(figure: Any) -> Any:
        return (
            select(figure)
            .where(
                PostBrand.platform == totals.platform,
                PostBrand.author_handle == totals.author_handle,
                *window.days(PostBrand.brand, PostBrand.posted_day),
            )
            .scalar_subquery()
        )

    posts = over_window(func.count()).label("posts")
    query = (
        select(
            totals.author_handle,
            totals.platform,
            posts,
            over_window(func.max(PostBrand.author_followers)),
            over_window(func.sum(PostBrand.author_followers)),
        )
        .where(
            totals.brand == window.brand,
            tuple_(totals.platform, totals.author_handle).in_(
                [(platform, handle) for handle, platform in accounts]
            ),
        )
        .order_by(desc(posts), totals.author_handle, totals.platform)
        .limit(top)
    )
    return [_account_row(row) for row in session.execute(query)]


def _account_row(row: Any) -> dict[str, Any]:
    return {
        "author": row[0],
        "platform": row[1],
        "posts": int(row[2]),
        "followers": None if row[3] is None else int(row[3]),
        "reach": None if row[4] is None else int(row[4]),
    }


def _sources(*, session: Session | Connection, window: Window) -> list[dict[str, Any]]:
    posts = func.sum(BrandPostDay.posts)
    query = (
        select(Source.name, posts.label("posts"))
        .join(views.sources, Source.id == BrandPostDay.source_id)
        .where(*window.days(BrandPostDay.brand, BrandPostDay.day))
        .group_by(Source.name)
        .having(posts > 0)
        .order_by(desc("posts"), Source.name)
    )
    return [{"source": name, "posts": int(n)} for name, n in session.execute(query).tuples()]


def _platforms(*, session: Session | Connection, window: Window) -> list[dict[str, Any]]:
    posts = func.sum(BrandPostDay.posts)
    query = (
        select(BrandPostDay.platform, posts.label("posts"))
        .where(*window.days(BrandPostDay.brand, BrandPostDay.day))
        .group_by(BrandPostDay.platform)
        .having(posts > 0)
        .order_by(desc("posts"), BrandPostDay.platform)
    )
    return [{"platform": name, "posts": int(n)} for name, n in session.execute(query).tuples()]


def _top_posts(*, session: Session | Connection, window: Window, top: int) -> list[dict[str, Any]]:
    query = (
        select(
            PostBrand.post_id,
            Post.url,
            Post.author_handle,
            Post.platform,
            func.coalesce(Post.created_at, Post.collected_at),
            PostBrand.max_probability,
        )
        .join(views.posts, Post.id == PostBrand.post_id)
        .where(*window.days(PostBrand.brand, PostBrand.posted_day))
        .order_by(desc(PostBrand.max_probability), PostBrand.post_id)
        .limit(top)
    )
    return [
        {
            "post_id": row[0],
            "url": row[1],
            "author": row[2],
            "platform": row[3],
            "posted_at": _iso(row[4]),
            "probability": round(float(row[5]), 4),
        }
        for row in session.execute(query)
    ]


def _co_endorsed(*, session: Session | Connection, brand: str, top: int) -> list[dict[str, Any]]:
    """Brands most often shown by the accounts that show this one (whole history)."""
    table = BrandCoendorsementTotal
    query = (
        select(table.other_brand, table.accounts)
        .where(table.brand == brand, table.accounts > 0)
        .order_by(desc(table.accounts), table.other_brand)
        .limit(top)
    )
    return [{"brand": row[0], "accounts": int(row[1])} for row in session.execute(query)]


def _iso(value: Any) -> str | None:
    """ISO form of a timestamp; SQLite hands back naive UTC values, PostgreSQL aware ones."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(value.astimezone(UTC).isoformat())


__all__ = ["BrandReport", "build_report", "resolve_brand"]
