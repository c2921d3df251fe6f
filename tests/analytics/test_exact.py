"""The report and the README's views equal a direct computation over the base tables.

A random store is built through the real write path (collection in several rounds, so that new
posts show images classified before; classification by one model version, then re-classification
of some images by a newer one), on SQLite and PostgreSQL, and every figure is compared with
``reference``, which counts from the base rows alone.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text

from bench.analytics_scale import readme_queries
from monitor.analytics.report import build_report
from monitor.domain import CollectedPost, Detection
from monitor.pipeline import Services
from monitor.storage import repository
from monitor.storage.db import session_scope, upgrade_database
from monitor.storage.tables import Classification, Image
from tests.analytics import reference

BRANDS = ["acme", "bmw", "globex", "initech", "nike"]
START = datetime(2026, 10, 20, 8, tzinfo=UTC)  # the README's query starts on 2026-11-01


def _random_post(rng: random.Random, number: int, image_pool: int) -> CollectedPost:
    images = rng.sample(range(image_pool), rng.choice([1, 1, 2, 3]))
    author = rng.choice([None, *[f"user{i}" for i in range(12)]])
    mentioned = rng.choice(["", *BRANDS, "BMW", "Nike"])
    created = START + timedelta(days=rng.randrange(21), hours=rng.randrange(24))
    return CollectedPost(
        platform=rng.choice(["mastodon", "reddit", "bluesky"]),
        external_id=str(number),
        url=f"https://example.social/{number}",
        author_handle=author,
        author_followers=rng.choice([None, 10, 500, 20_000]),
        text=f"post {number} {mentioned}",
        created_at=None if rng.random() < 0.1 else created,
        image_urls=tuple(f"https://img.example/{i}.jpg" for i in images),
    )


def _random_detections(rng: random.Random) -> list[Detection]:
    count = rng.choice([0, 1, 1, 1, 2, 3])
    return [
        Detection(
            rng.choice(BRANDS[:3] if rng.random() < 0.7 else BRANDS),
            rng.choice([0.3, 0.5, 0.55, 0.6, 0.79, 0.8, 0.9, 0.95, 1.0]),
            (0, 0, 10, 10),
        )
        for _ in range(count)
    ]


def _collect(services: Services, rng: random.Random, numbers: range, pool: int) -> None:
    with session_scope(services.sessions) as session:
        sources = repository.list_sources(session=session)
        for number in numbers:
            source = rng.choice(sources)
            repository.store_posts(
                session=session,
                source=source,
                posts=[_random_post(rng, number, pool)],
                now=START + timedelta(days=30),
            )


def _classify(
    services: Services, rng: random.Random, version: str, share: float, moment: datetime
) -> None:
    with session_scope(services.sessions) as session:
        images = [
            image
            for image in session.scalars(select(Image).order_by(Image.id))
            if rng.random() < share
        ]
        for start in range(0, len(images), 7):
            repository.save_classifications(
                session=session,
                verdicts=[(image, _random_detections(rng)) for image in images[start : start + 7]],
                model_version=version,
                now=moment,
            )


def build_random_store(services: Services, seed: int) -> None:
    """Three sources; posts in three rounds; v1 on most images, v2 again on some."""
    rng = random.Random(seed)
    with session_scope(services.sessions) as session:
        for name in ("feeds", "tags", "subs"):
            repository.add_source(
                session=session, name=name, kind="fake", options={}, every_seconds=None, now=START
            )
    _collect(services, rng, range(0, 40), pool=50)
    _classify(services, rng, "v1", 0.8, START + timedelta(days=31))
    _collect(services, rng, range(40, 80), pool=70)  # new posts showing classified images
    _classify(services, rng, "v1", 1.0, START + timedelta(days=32))
    _collect(services, rng, range(80, 100), pool=70)
    _classify(services, rng, "v2", 0.4, START + timedelta(days=33))


def _windows() -> list[tuple[date | None, date | None]]:
    first = START.date()
    return [
        (None, None),
        (first + timedelta(days=3), first + timedelta(days=9)),
        (first + timedelta(days=5), None),
        (None, first + timedelta(days=12)),
        (first + timedelta(days=7), first + timedelta(days=7)),
    ]


def assert_exact(services: Services) -> None:
    """Every brand's report in every window, and every view, equal the reference."""
    with session_scope(services.sessions) as session:
        facts = reference.load(session)
        for brand in sorted(facts.brands()):
            for since, until in _windows():
                expected = reference.report(facts, brand, since, until, top=5)
                for scan_limit in (10**9, 0):  # top accounts by grouping, and from the totals
                    got = build_report(
                        session=session,
                        brand=brand,
                        since=since,
                        until=until,
                        top=5,
                        scan_limit=scan_limit,
                    )
                    assert got.to_dict() == expected, (brand, since, until, scan_limit)
        assert reference.stored_views(session) == reference.views(facts)


@pytest.fixture(params=[7, 19])
def random_store(request: pytest.FixtureRequest, services: Services) -> Iterator[Services]:
    build_random_store(services, request.param)
    yield services


def test_report_and_views_equal_the_base_tables(random_store: Services) -> None:
    assert_exact(random_store)


def test_removing_a_source_takes_out_what_it_counted(random_store: Services) -> None:
    with session_scope(random_store.sessions) as session:
        before = build_report(session=session, brand="acme").posts
        repository.remove_source(session=session, name="tags")
    assert_exact(random_store)
    with session_scope(random_store.sessions) as session:
        assert build_report(session=session, brand="acme").posts < before


def test_a_redelivered_batch_counts_nothing_twice(random_store: Services) -> None:
    with session_scope(random_store.sessions) as session:
        before = build_report(session=session, brand="bmw").to_dict()
        images = list(
            session.scalars(
                select(Image)
                .join(Classification, Classification.image_id == Image.id)
                .where(Classification.model_version == "v1")
            )
        )
        assert images
        written = repository.save_classifications(
            session=session,
            verdicts=[(image, [Detection("bmw", 0.99, None)]) for image in images],
            model_version="v1",
            now=START + timedelta(days=40),
        )
    assert not any(written)
    with session_scope(random_store.sessions) as session:
        assert build_report(session=session, brand="bmw").to_dict() == before


def test_the_upgrade_backfill_equals_the_write_path(random_store: Services) -> None:
    """Back to the previous schema and up again: the backfill rebuilds the same summaries."""
    url = random_store.settings.database
    with session_scope(random_store.sessions) as session:
        summaries_before = _summary_rows(session)
        report_before = build_report(session=session, brand="bmw").to_dict()
    from alembic import command

    from monitor.storage.db import alembic_config

    command.downgrade(alembic_config(url), "0002")
    upgrade_database(url)
    with session_scope(random_store.sessions) as session:
        assert _summary_rows(session) == summaries_before
        assert build_report(session=session, brand="bmw").to_dict() == report_before
    assert_exact(random_store)


def _summary_rows(session) -> dict[str, set[tuple[object, ...]]]:  # type: ignore[no-untyped-def]
    """The summary tables without rows counting zero (the write path may leave those)."""
    queries = {
        "post_brands": "SELECT post_id, brand, detections, max_probability, posted_day, "
        "source_id, platform, author_handle, author_followers, image_only FROM post_brands",
        "brand_detection_days": "SELECT brand, day, previous_day, probability_bin, detections "
        "FROM brand_detection_days WHERE detections <> 0",
        "brand_post_days": "SELECT brand, day, source_id, platform, posts, image_only_posts "
        "FROM brand_post_days WHERE posts <> 0 OR image_only_posts <> 0",
        "brand_account_totals": "SELECT brand, platform, author_handle, posts, followers, "
        "reach, posts_with_followers FROM brand_account_totals WHERE posts <> 0",
        "brand_pair_totals": "SELECT brand_a, brand_b, posts FROM brand_pair_totals "
        "WHERE posts <> 0",
        "brand_coendorsement_totals": "SELECT brand, other_brand, accounts "
        "FROM brand_coendorsement_totals WHERE accounts <> 0",
        "current": "SELECT id, current FROM detections",
    }
    return {
        name: {tuple(str(v) for v in row) for row in session.execute(text(query))}
        for name, query in queries.items()
    }


def test_the_readme_queries_run_and_agree_with_the_views(random_store: Services) -> None:
    """Every SQL block in the README runs on this database and returns what the views hold."""
    blocks = readme_queries()
    assert len(blocks) >= 5
    with session_scope(random_store.sessions) as session:
        facts = reference.load(session)
        expected = reference.views(facts)
        for sql in blocks:
            rows = session.execute(text(sql)).all()
            assert rows, sql
        image_only, posts = session.execute(text(_block_with(blocks, "image_only_posts"))).one()
        november = [r for r in expected["brand_daily"] if r[0] == "bmw" and r[1] >= "2026-11-01"]
        assert (image_only, posts) == (sum(r[4] for r in november), sum(r[3] for r in november))
        pairs = [tuple(row) for row in session.execute(text(_block_with(blocks, "brand_pairs")))]
        assert set(pairs) <= expected["brand_pairs"]
        assert [row[2] for row in pairs] == sorted(
            (row[2] for row in expected["brand_pairs"]), reverse=True
        )[: len(pairs)]


def _block_with(blocks: list[str], needle: str) -> str:
    return next(block for block in blocks if needle in block)
