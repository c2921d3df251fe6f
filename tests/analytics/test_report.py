"""The brand report's numbers, checked by hand on a small known set, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from monitor.analytics.report import build_report
from monitor.domain import CollectedPost, Detection
from monitor.exceptions import UnknownBrandError
from monitor.pipeline import Services
from monitor.storage import repository
from monitor.storage.db import session_scope
from monitor.storage.tables import Image

# (post id, author, followers, day, text, {image: [(brand, probability)]})
POSTS = [
    ("1", "ana", 1000, 10, "new wheels!", {"a.jpg": [("bmw", 0.95)]}),
    ("2", "ana", 1200, 11, "my BMW at the lake", {"b.jpg": [("bmw", 0.81), ("nike", 0.7)]}),
    ("3", "bob", 50, 11, "morning run", {"c.jpg": [("nike", 0.88)]}),
    ("4", "bob", 50, 12, "sunday", {"a.jpg": [("bmw", 0.95)]}),  # the same image as post 1
    ("5", "cy", None, 14, "", {"d.jpg": []}),
]


def store(services: Services) -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with session_scope(services.sessions) as session:
        source = repository.add_source(
            session=session, name="src", kind="fake", options={}, every_seconds=None, now=now
        )
        posts = [
            CollectedPost(
                platform="social",
                external_id=external_id,
                url=f"https://example.social/{external_id}",
                author_handle=author,
                author_followers=followers,
                text=text,
                created_at=datetime(2026, 11, day, 12, tzinfo=UTC),
                image_urls=tuple(f"https://img/{name}" for name in images),
            )
            for external_id, author, followers, day, text, images in POSTS
        ]
        repository.store_posts(session=session, source=source, posts=posts, now=now)
        verdicts = {name: found for *_, images in POSTS for name, found in images.items()}
        for image in session.scalars(select(Image)):
            found = verdicts[image.url.rsplit("/", 1)[1]]
            repository.save_classification(
                session=session,
                image=image,
                model_version="v1",
                detections=[Detection(brand, p, (0, 0, 10, 10)) for brand, p in found],
                now=now,
            )


def test_counts_days_and_accounts(services: Services) -> None:
    store(services)
    with session_scope(services.sessions) as session:
        report = build_report(session=session, brand="BMW")
    assert report.brand == "bmw"
    # a.jpg is one detection shown in two posts (1 and 4): it counts once, both posts count
    assert (report.detections, report.posts) == (2, 3)
    assert report.by_day == [
        {"day": "2026-11-10", "detections": 1, "posts": 1},
        {"day": "2026-11-11", "detections": 1, "posts": 1},
        {"day": "2026-11-12", "detections": 1, "posts": 1},
    ]
    assert report.top_authors == [
        {"author": "ana", "platform": "social", "posts": 2, "followers": 1200, "reach": 2200},
        {"author": "bob", "platform": "social", "posts": 1, "followers": 50, "reach": 50},
    ]
    assert (report.image_only_posts, report.image_only_share) == (2, pytest.approx(0.6667))
    assert report.co_endorsed_brands == [{"brand": "nike", "accounts": 2}]
    assert report.platforms == [{"platform": "social", "posts": 3}]
    assert [row["detections"] for row in report.probability_histogram] == [0, 0, 0, 0, 1, 1]
    assert report.top_posts[0]["probability"] == pytest.approx(0.95)


def test_date_window_is_inclusive(services: Services) -> None:
    store(services)
    with session_scope(services.sessions) as session:
        report = build_report(
            session=session, brand="bmw", since=date(2026, 11, 11), until=date(2026, 11, 11)
        )
    assert (report.posts, [row["day"] for row in report.by_day]) == (1, ["2026-11-11"])


def test_unknown_brand_lists_the_known(services: Services) -> None:
    store(services)
    with session_scope(services.sessions) as session, pytest.raises(UnknownBrandError) as caught:
        build_report(session=session, brand="adidas", model_labels=["puma"])
    assert "known brands: bmw, nike, puma" in str(caught.value)
