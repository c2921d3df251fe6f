"""The analytics computed directly from the base tables, in plain Python, for the exactness tests.

Nothing here reads a summary table or the current-classification pointer: each image's current
classification is found again as its newest (``classified_at``, then id), each detection is
followed to every post that shows its image. The tests compare the report and the views with this.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import combinations, pairwise
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.storage.summaries import PROBABILITY_BINS
from monitor.storage.tables import Classification, DetectionRow, Post, PostImage, Source


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class BaseFacts:
    """The base rows the reference counts from."""

    posts: dict[int, Post]
    source_names: dict[int, str]
    images_of_post: dict[int, set[int]]
    posts_of_image: dict[int, set[int]]
    current_detections: dict[int, list[DetectionRow]] = field(default_factory=dict)

    def day(self, post_id: int) -> date:
        post = self.posts[post_id]
        return _aware(post.created_at or post.collected_at).astimezone(UTC).date()

    def posted_at(self, post_id: int) -> datetime:
        post = self.posts[post_id]
        return _aware(post.created_at or post.collected_at).astimezone(UTC)

    def detections_of(self, brand: str) -> list[DetectionRow]:
        return [d for rows in self.current_detections.values() for d in rows if d.brand == brand]

    def posts_showing(self, brand: str) -> set[int]:
        return {
            post_id
            for detection in self.detections_of(brand)
            for post_id in self.posts_of_image.get(detection.image_id, set())
        }

    def brands(self) -> set[str]:
        return {d.brand for rows in self.current_detections.values() for d in rows}

    def brands_of_post(self, post_id: int) -> set[str]:
        return {
            d.brand
            for image_id in self.images_of_post.get(post_id, set())
            for d in self.current_detections.get(image_id, [])
        }


def load(session: Session) -> BaseFacts:
    """Read the base tables; find each image's newest classification without the pointer."""
    posts = {post.id: post for post in session.scalars(select(Post))}
    source_names = dict(session.execute(select(Source.id, Source.name)).tuples().all())
    images_of_post: dict[int, set[int]] = defaultdict(set)
    posts_of_image: dict[int, set[int]] = defaultdict(set)
    for post_id, image_id in session.execute(select(PostImage.post_id, PostImage.image_id)):
        images_of_post[post_id].add(image_id)
        posts_of_image[image_id].add(post_id)
    newest: dict[int, tuple[datetime, int]] = {}
    for classification in session.scalars(select(Classification)):
        key = (_aware(classification.classified_at), classification.id)
        if classification.image_id not in newest or key > newest[classification.image_id]:
            newest[classification.image_id] = key
    current: dict[int, list[DetectionRow]] = defaultdict(list)
    for detection in session.scalars(select(DetectionRow)):
        if newest.get(detection.image_id, (None, None))[1] == detection.classification_id:
            current[detection.image_id].append(detection)
    return BaseFacts(posts, source_names, images_of_post, posts_of_image, current)


def _in(day: date, since: date | None, until: date | None) -> bool:
    return (since is None or day >= since) and (until is None or day <= until)


def report(
    facts: BaseFacts, brand: str, since: date | None, until: date | None, top: int = 10
) -> dict[str, Any]:
    """``build_report(...).to_dict()`` computed from the base rows."""
    window = {p for p in facts.posts_showing(brand) if _in(facts.day(p), since, until)}
    detections = [
        d
        for d in facts.detections_of(brand)
        if any(p in window for p in facts.posts_of_image[d.image_id])
    ]
    needle = brand.lower()
    image_only = sum(1 for p in window if needle not in (facts.posts[p].text or "").lower())
    days = sorted({facts.day(p) for p in window})
    by_day = [
        {
            "day": str(day),
            "detections": sum(
                1
                for d in detections
                if any(facts.day(p) == day for p in facts.posts_of_image[d.image_id])
            ),
            "posts": sum(1 for p in window if facts.day(p) == day),
        }
        for day in days
    ]
    bins = []
    for low, high in pairwise(PROBABILITY_BINS):
        count = sum(1 for d in detections if low <= d.probability < high)
        bins.append({"from": low, "to": min(high, 1.0), "detections": count})
    return {
        "brand": brand,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "detections": len(detections),
        "posts": len(window),
        "image_only_posts": image_only,
        "image_only_share": round(image_only / len(window), 4) if window else None,
        "by_day": by_day,
        "top_authors": _top_authors(facts, window, top),
        "sources": _counted(
            [facts.source_names[facts.posts[p].source_id] for p in window], "source"
        ),
        "platforms": _counted([facts.posts[p].platform for p in window], "platform"),
        "probability_histogram": bins,
        "top_posts": _top_posts(facts, brand, window, top),
        "co_endorsed_brands": [
            {"brand": other, "accounts": n}
            for (first, other), n in sorted(
                coendorsement(facts).items(), key=lambda item: (-item[1], item[0][1])
            )
            if first == brand
        ][:top],
    }


def _counted(values: list[str], key: str) -> list[dict[str, Any]]:
    counts: dict[str, int] = defaultdict(int)
    for value in values:
        counts[value] += 1
    return [{key: k, "posts": n} for k, n in sorted(counts.items(), key=lambda i: (-i[1], i[0]))]


def _top_authors(facts: BaseFacts, window: set[int], top: int) -> list[dict[str, Any]]:
    rows = accounts_of(facts, window)
    ordered = sorted(rows.items(), key=lambda item: (-item[1]["posts"], item[0][1], item[0][0]))
    return [
        {"author": handle, "platform": platform, **values}
        for (platform, handle), values in ordered[:top]
    ]


def accounts_of(facts: BaseFacts, post_ids: set[int]) -> dict[tuple[str, str], dict[str, Any]]:
    """(platform, handle) -> posts, followers (largest), reach (sum), over ``post_ids``."""
    grouped: dict[tuple[str, str], list[int | None]] = defaultdict(list)
    for p in post_ids:
        post = facts.posts[p]
        if post.author_handle is not None:
            grouped[(post.platform, post.author_handle)].append(post.author_followers)
    result = {}
    for key, followers in grouped.items():
        known = [f for f in followers if f is not None]
        result[key] = {
            "posts": len(followers),
            "followers": max(known) if known else None,
            "reach": sum(known) if known else None,
        }
    return result


def _top_posts(facts: BaseFacts, brand: str, window: set[int], top: int) -> list[dict[str, Any]]:
    best = {
        p: max(
            d.probability
            for image_id in facts.images_of_post[p]
            for d in facts.current_detections.get(image_id, [])
            if d.brand == brand
        )
        for p in window
    }
    ordered = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [
        {
            "post_id": p,
            "url": facts.posts[p].url,
            "author": facts.posts[p].author_handle,
            "platform": facts.posts[p].platform,
            "posted_at": facts.posted_at(p).isoformat(),
            "probability": round(float(probability), 4),
        }
        for p, probability in ordered
    ]


def coendorsement(facts: BaseFacts) -> dict[tuple[str, str], int]:
    """(brand, other brand) -> accounts showing both (both ways round)."""
    shown: dict[tuple[str, str], set[str]] = defaultdict(set)
    for brand in facts.brands():
        for p in facts.posts_showing(brand):
            post = facts.posts[p]
            if post.author_handle is not None:
                shown[(post.platform, post.author_handle)].add(brand)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for brands in shown.values():
        for first in brands:
            for other in brands - {first}:
                counts[(first, other)] += 1
    return dict(counts)


def views(facts: BaseFacts) -> dict[str, set[tuple[Any, ...]]]:
    """The contents every README view should have."""
    weekly: set[tuple[Any, ...]] = set()
    daily: set[tuple[Any, ...]] = set()
    accounts: set[tuple[Any, ...]] = set()
    for brand in facts.brands():
        showing = facts.posts_showing(brand)
        detections = facts.detections_of(brand)
        weeks: dict[date, set[int]] = defaultdict(set)
        days: dict[date, set[int]] = defaultdict(set)
        for p in showing:
            day = facts.day(p)
            weeks[day - timedelta(days=day.weekday())].add(p)
            days[day].add(p)
        for week, posts in weeks.items():
            shown = [
                d for d in detections if any(p in posts for p in facts.posts_of_image[d.image_id])
            ]
            weekly.add((brand, str(week), len(shown), len(posts)))
        needle = brand.lower()
        for day, posts in days.items():
            shown = [
                d for d in detections if any(p in posts for p in facts.posts_of_image[d.image_id])
            ]
            image_only = sum(1 for p in posts if needle not in (facts.posts[p].text or "").lower())
            daily.add((brand, str(day), len(shown), len(posts), image_only))
        for (platform, handle), values in accounts_of(facts, showing).items():
            accounts.add(
                (brand, platform, handle, values["posts"], values["followers"], values["reach"])
            )
    pairs: dict[tuple[str, str], int] = defaultdict(int)
    for p in facts.posts:
        for pair in combinations(sorted(facts.brands_of_post(p)), 2):
            pairs[pair] += 1
    return {
        "brand_weekly": weekly,
        "brand_daily": daily,
        "brand_accounts": accounts,
        "brand_pairs": {(a, b, n) for (a, b), n in pairs.items()},
        "brand_coendorsement": {(a, b, n) for (a, b), n in coendorsement(facts).items()},
    }


VIEW_QUERIES = {
    "brand_weekly": "SELECT brand, week_start, detections, posts FROM brand_weekly",
    "brand_daily": "SELECT brand, day, detections, posts, image_only_posts FROM brand_daily",
    "brand_accounts": (
        "SELECT brand, platform, author_handle, posts, followers, reach FROM brand_accounts"
    ),
    "brand_pairs": "SELECT brand_a, brand_b, posts FROM brand_pairs",
    "brand_coendorsement": "SELECT brand, other_brand, accounts FROM brand_coendorsement",
}


def stored_views(session: Session) -> dict[str, set[tuple[Any, ...]]]:
    """What the views hold, with days as ISO strings and numbers as ints."""
    from sqlalchemy import text

    def normal(value: Any) -> Any:
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if hasattr(value, "as_integer_ratio") and not isinstance(value, (int, float)):
            return int(value)  # Decimal sums on PostgreSQL
        return value

    return {
        name: {tuple(normal(v) for v in row) for row in session.execute(text(query))}
        for name, query in VIEW_QUERIES.items()
    }
