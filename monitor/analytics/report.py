"""The brand report an analyst runs: how often, where, shown by whom, and how sure.

All counting happens in SQL over the ``post_detections`` view (one row per detection per post that
shows the image), so the report agrees with what an analyst gets from the same views by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import Select, and_, desc, distinct, func, select
from sqlalchemy.orm import Session

from monitor.analytics.views import brand_coendorsement, post_detections
from monitor.exceptions import UnknownBrandError
from monitor.storage import repository

PROBABILITY_BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)


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


def resolve_brand(*, session: Session, brand: str, model_labels: Sequence[str] = ()) -> str:
    """The stored spelling of ``brand`` (case-insensitive), or UnknownBrandError listing the known."""
    known = sorted(set(repository.known_brands(session=session)) | set(model_labels))
    for candidate in known:
        if candidate.casefold() == brand.casefold():
            return candidate
    raise UnknownBrandError(brand, known)


def build_report(
    *,
    session: Session,
    brand: str,
    since: date | None = None,
    until: date | None = None,
    top: int = 10,
    model_labels: Sequence[str] = (),
) -> BrandReport:
    """The report for one brand between ``since`` and ``until`` (both inclusive days, UTC)."""
    brand = resolve_brand(session=session, brand=brand, model_labels=model_labels)
    where = _filters(brand=brand, since=since, until=until)
    view = post_detections
    detections, posts = session.execute(
        select(
            func.count(distinct(view.c.detection_id)), func.count(distinct(view.c.post_id))
        ).where(where)
    ).one()
    image_only = _image_only_posts(session=session, brand=brand, where=where)
    return BrandReport(
        brand=brand,
        since=since,
        until=until,
        detections=detections,
        posts=posts,
        image_only_posts=image_only,
        image_only_share=round(image_only / posts, 4) if posts else None,
        by_day=_by_day(session=session, where=where),
        top_authors=_top_authors(session=session, brand=brand, where=where, top=top),
        sources=_count_by(session=session, where=where, column=view.c.source_name, key="source"),
        platforms=_count_by(session=session, where=where, column=view.c.platform, key="platform"),
        probability_histogram=_histogram(session=session, where=where),
        top_posts=_top_posts(session=session, where=where, top=top),
        co_endorsed_brands=_co_endorsed(session=session, brand=brand, top=top),
    )


def _filters(*, brand: str, since: date | None, until: date | None) -> Any:
    conditions = [post_detections.c.brand == brand]
    if since is not None:
        conditions.append(post_detections.c.posted_at >= datetime.combine(since, time(), UTC))
    if until is not None:
        end = datetime.combine(until + timedelta(days=1), time(), UTC)
        conditions.append(post_detections.c.posted_at < end)
    return and_(*conditions)


def _image_only_posts(*, session: Session, brand: str, where: Any) -> int:
    """Posts showing the brand whose text never names it: what text search would miss."""
    rows = session.execute(
        select(post_detections.c.post_id, post_detections.c.post_text).where(where).distinct()
    )
    needle = brand.casefold()
    return sum(1 for _, text in rows if needle not in (text or "").casefold())


def _by_day(*, session: Session, where: Any) -> list[dict[str, Any]]:
    day = func.date(post_detections.c.posted_at)
    query: Select[Any] = (
        select(
            day.label("day"),
            func.count(distinct(post_detections.c.detection_id)),
            func.count(distinct(post_detections.c.post_id)),
        )
        .where(where)
        .group_by(day)
        .order_by(day)
    )
    return [
        {"day": str(row[0]), "detections": row[1], "posts": row[2]}
        for row in session.execute(query)
    ]


def _top_authors(*, session: Session, brand: str, where: Any, top: int) -> list[dict[str, Any]]:
    """Accounts by posts showing the brand, with follower count and reach (sum over those posts)."""
    per_post = (
        select(
            post_detections.c.post_id,
            post_detections.c.platform,
            post_detections.c.author_handle,
            post_detections.c.author_followers,
        )
        .where(where, post_detections.c.author_handle.is_not(None))
        .distinct()
        .subquery()
    )
    posts = func.count(per_post.c.post_id)
    query = (
        select(
            per_post.c.author_handle,
            per_post.c.platform,
            posts.label("posts"),
            func.max(per_post.c.author_followers),
            func.sum(per_post.c.author_followers),
        )
        .group_by(per_post.c.author_handle, per_post.c.platform)
        .order_by(desc("posts"), per_post.c.author_handle)
        .limit(top)
    )
    return [
        {
            "author": row[0],
            "platform": row[1],
            "posts": row[2],
            "followers": row[3],
            "reach": row[4],
        }
        for row in session.execute(query)
    ]


def _count_by(*, session: Session, where: Any, column: Any, key: str) -> list[dict[str, Any]]:
    posts = func.count(distinct(post_detections.c.post_id))
    query = (
        select(column, posts.label("posts"))
        .where(where)
        .group_by(column)
        .order_by(desc("posts"), column)
    )
    return [{key: row[0], "posts": row[1]} for row in session.execute(query)]


def _histogram(*, session: Session, where: Any) -> list[dict[str, Any]]:
    bins = []
    for low, high in pairwise(PROBABILITY_BINS):
        count = session.scalar(
            select(func.count(distinct(post_detections.c.detection_id))).where(
                where, post_detections.c.probability >= low, post_detections.c.probability < high
            )
        )
        bins.append({"from": low, "to": min(high, 1.0), "detections": count or 0})
    return bins


def _top_posts(*, session: Session, where: Any, top: int) -> list[dict[str, Any]]:
    probability = func.max(post_detections.c.probability)
    query = (
        select(
            post_detections.c.post_id,
            post_detections.c.post_url,
            post_detections.c.author_handle,
            post_detections.c.platform,
            func.min(post_detections.c.posted_at),
            probability.label("probability"),
        )
        .where(where)
        .group_by(
            post_detections.c.post_id,
            post_detections.c.post_url,
            post_detections.c.author_handle,
            post_detections.c.platform,
        )
        .order_by(desc("probability"), post_detections.c.post_id)
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


def _co_endorsed(*, session: Session, brand: str, top: int) -> list[dict[str, Any]]:
    """Brands most often shown by the accounts that show this one."""
    query = (
        select(brand_coendorsement.c.other_brand, brand_coendorsement.c.accounts)
        .where(brand_coendorsement.c.brand == brand)
        .order_by(desc(brand_coendorsement.c.accounts), brand_coendorsement.c.other_brand)
        .limit(top)
    )
    return [{"brand": row[0], "accounts": row[1]} for row in session.execute(query)]


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


__all__ = ["BrandReport", "build_report", "resolve_brand"]
