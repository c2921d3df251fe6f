"""Every platform kind collects from a local server in its real format, through Celery, into Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.collectors.base import validate_options
from monitor.config import load_settings
from monitor.pipeline import Services
from monitor.queue import CeleryWorkQueue
from monitor.storage import repository
from monitor.storage.db import session_factory, session_scope
from monitor.storage.tables import CollectionRun, Image, Post
from tests.collectors.conftest import PlatformServer, Reply
from tests.conftest import _truncate
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SOURCES = {
    "bmw-mastodon": ("mastodon", {"tag": "bmw"}),
    "bmw-reddit": ("reddit", {"subreddit": "BMW"}),
    "alice-bluesky": ("bluesky", {"actor": "alice.bsky.social"}),
    "cars-rss": ("rss", {}),
}


@pytest.fixture
def platform() -> Iterator[PlatformServer]:
    server = PlatformServer()
    server.add("/api/v1/timelines/tag/bmw", Reply.json_file("mastodon_tag_page1.json"))
    server.add("/api/v1/timelines/tag/bmw", Reply.json([]), query={"max_id": "112000000000001001"})
    server.add("/r/BMW/new.json", Reply.json_file("reddit_new_page1.json"))
    server.add(
        "/r/BMW/new.json", Reply.json_file("reddit_new_page2.json"), query={"after": "t3_c3"}
    )
    server.add(
        "/xrpc/app.bsky.feed.getAuthorFeed", Reply.json_file("bluesky_author_feed_page2.json")
    )
    server.add("/feed.xml", Reply.file("rss2_media.xml", "application/rss+xml"))
    server.start()
    yield server
    server.stop()


def test_each_platform_kind_is_collected_by_a_celery_worker_into_postgres(
    postgres_url: str, redis_url: str, tmp_path: Path, platform: PlatformServer, start_worker
) -> None:
    _truncate(postgres_url)
    settings = load_settings(
        home=tmp_path / "home", database_url=postgres_url, broker_url=redis_url
    )
    services = Services(settings=settings, sessions=session_factory(postgres_url))
    with session_scope(services.sessions) as session:
        for name, (kind, options) in SOURCES.items():
            url = platform.url("/feed.xml") if kind == "rss" else platform.base_url
            repository.add_source(
                session=session,
                name=name,
                kind=kind,
                options=validate_options(kind, {"url": url, **options}),
                every_seconds=None,
                now=services.clock(),
            )
    worker = start_worker(queues="collect")  # images stay queued: no fetch worker in this test
    queue = CeleryWorkQueue(
        broker_url=redis_url, fetch_batch_size=4, classify_batch_size=4, visibility_timeout=60
    )

    for name in SOURCES:
        queue.collect(name, scheduled=False)

    def all_collected() -> bool:
        with session_scope(services.sessions) as session:
            return session.scalar(select(func.count()).select_from(CollectionRun)) == len(SOURCES)

    wait_for(all_collected, timeout=120, what="a collection run per source", on_timeout=worker.log)
    with session_scope(services.sessions) as session:
        runs = session.scalars(select(CollectionRun)).all()
        assert {run.status for run in runs} == {"ok"}, [run.error for run in runs]
        platforms = dict(
            session.execute(select(Post.platform, func.count()).group_by(Post.platform))
            .tuples()
            .all()
        )
        authors = session.scalars(
            select(Post.author_handle).where(Post.author_handle.is_not(None))
        ).all()
        images = session.scalar(select(func.count()).select_from(Image))
    kinds = {key.split(":")[0] for key in platforms}
    assert kinds == {"mastodon", "reddit", "bluesky", "rss"}, platforms
    assert all(count > 0 for count in platforms.values())
    assert len(set(authors)) >= 4
    assert images and images > 0
