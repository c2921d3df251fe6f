"""The analytics at scale: a synthetic store of N detections, the upgrade, the report, the SQL.

    python bench/analytics_scale.py --detections 1000000 [--database monitor_bench] [--runs 5]
        [--admin-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--reuse]

1. Builds a store of today's schema (revision 0002) straight into PostgreSQL with COPY, of the
   shape a team watching hashtags and subreddits collects: about 30 brands with Zipf-like
   popularity, 3 platforms with 4 sources each, 200 k accounts with heavy-tailed activity and
   followers, two years of posts, 1-3 images a post, one link in seven showing an image already
   shown by an earlier post, three model versions (every image classified once, 35 % again, 10 % a
   third time) so that the newest classification matters; N posts, 1.8 N images, 2.6 N
   classifications, N detections.
2. Times ``monitor db upgrade`` (the summaries' backfill) and the store's size.
3. Times ``monitor report`` end to end (a new process each time) in table, json and csv, for the
   most frequent brand and a rare one, over the whole history, a year and a month, and an unknown
   brand's error; the median of ``--runs``.
4. Times every SQL query in the README (median of ``--runs``).
5. Times the worker's write (storing classifications of fetched images, 16 a batch) side by side
   with the previous write path (per-image savepoint, no summaries), batch by batch alternately, and
   reports the ratio.
6. Checks a few report figures against a direct count over the base tables.

The results are printed as a Markdown table and written to ``bench/results/analytics_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PHOTOS = ROOT.parent / "shared" / "datasets" / "flickr_logos_27" / "images"
sys.path.insert(0, str(ROOT))

BRANDS = [
    "bmw", "nike", "adidas", "cocacola", "apple", "google", "pepsi", "starbucks", "mcdonalds",
    "ford", "ferrari", "heineken", "puma", "vodafone", "intel", "shell", "hp", "dhl", "ups",
    "fedex", "esso", "texaco", "milka", "nvidia", "tsingtao", "corona", "guinness", "paulaner",
    "singha", "chimay",
]  # fmt: skip
PLATFORMS = ["mastodon", "reddit", "bluesky"]
SOURCES_PER_PLATFORM = 4
ACCOUNTS = 200_000
START = datetime(2024, 12, 1, tzinfo=UTC)
DAYS = 730
VERSIONS = ("v1", "v2", "v3")
CHUNK = 1_000_000
PHOTO_BYTES = 100_000  # FlickrLogos-27 photos average 99 KB
THUMBNAIL_BYTES = 4_700  # their 160-pixel thumbnails average 4.7 KB


# --- building the store ------------------------------------------------------------------------


def _zipf_weights(count: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, count + 1) ** exponent
    return weights / weights.sum()


def _timestamps(seconds: np.ndarray) -> list[str]:
    moments = np.datetime64("2024-12-01T00:00:00") + seconds.astype("timedelta64[s]")
    return [f"{value}+00" for value in np.datetime_as_string(moments, unit="s")]


def _copy(engine: Engine, table: str, columns: str, rows: Callable[[], Any]) -> None:
    """COPY rows (an iterable of tuples, produced chunk by chunk) into ``table``."""
    with engine.raw_connection() as connection:
        cursor = connection.cursor()
        cursor.execute("SET session_replication_role = replica")  # no FK triggers during the load
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for chunk in rows():
                for row in chunk:
                    copy.write_row(row)
        connection.commit()


def build_store(engine: Engine, detections: int, seed: int) -> dict[str, int]:
    """The synthetic store of today's schema; returns its row counts."""
    rng = np.random.default_rng(seed)
    posts = detections
    now = "2026-12-01 00:00:00+00"
    sources = [
        (index + 1, f"{platform}-{number}", "fake", "{}", now, 0)
        for index, (platform, number) in enumerate(
            (p, n) for p in PLATFORMS for n in range(SOURCES_PER_PLATFORM)
        )
    ]
    _copy(
        engine,
        "sources",
        "id, name, kind, options, created_at, consecutive_failures",
        lambda: [sources],
    )

    # accounts: activity and followers heavy-tailed; each account lives on one platform
    account_of_post = rng.choice(ACCOUNTS, size=posts, p=_zipf_weights(ACCOUNTS, 0.9))
    followers = np.round(rng.lognormal(5.5, 2.2, size=ACCOUNTS)).astype(np.int64)
    platform_of_account = np.arange(ACCOUNTS) % len(PLATFORMS)
    platform_of_post = platform_of_account[account_of_post]
    source_of_post = (
        platform_of_post * SOURCES_PER_PLATFORM + rng.integers(0, SOURCES_PER_PLATFORM, posts) + 1
    )
    growth = np.sqrt(np.sort(rng.random(posts)))  # more posts later: monitoring grows
    post_seconds = (growth * DAYS * 86400).astype(np.int64)
    no_date = rng.random(posts) < 0.01
    mentioned = rng.choice(len(BRANDS), size=posts, p=_zipf_weights(len(BRANDS), 1.0))
    names_a_brand = rng.random(posts) < 0.3
    no_handle = rng.random(posts) < 0.02

    def post_rows() -> Any:
        for start in range(0, posts, CHUNK):
            stop = min(posts, start + CHUNK)
            stamps = _timestamps(post_seconds[start:stop])
            columns = zip(
                range(start + 1, stop + 1),
                source_of_post[start:stop].tolist(),
                platform_of_post[start:stop].tolist(),
                account_of_post[start:stop].tolist(),
                followers[account_of_post[start:stop]].tolist(),
                no_handle[start:stop].tolist(),
                mentioned[start:stop].tolist(),
                names_a_brand[start:stop].tolist(),
                no_date[start:stop].tolist(),
                stamps,
                strict=True,
            )
            yield (
                (
                    i,
                    source,
                    PLATFORMS[platform],
                    str(i),
                    f"https://social.example/{i}",
                    None if hidden else f"user{account}",
                    None if hidden else count,
                    f"post {i} {BRANDS[brand] if named else 'look'}",
                    None if undated else stamp,
                    stamp,
                )
                for (
                    i,
                    source,
                    platform,
                    account,
                    count,
                    hidden,
                    brand,
                    named,
                    undated,
                    stamp,
                ) in columns
            )

    _copy(
        engine,
        "posts",
        "id, source_id, platform, external_id, url, author_handle, author_followers, text, "
        "created_at, collected_at",
        post_rows,
    )

    # images: 1-3 a post; one link in seven shows an image an earlier post showed
    per_post = rng.choice([1, 2, 3], size=posts, p=[0.3, 0.3, 0.4])
    link_post = np.repeat(np.arange(posts), per_post)
    link_position = _positions(per_post)
    shared = rng.random(link_post.size) < 1 / 7
    shared[0] = False
    owners = ~shared
    images = int(owners.sum())
    link_image = np.empty(link_post.size, dtype=np.int64)
    link_image[owners] = np.arange(images)
    owned_before = np.cumsum(owners) - 1  # newest image id owned at each link
    back = rng.geometric(1 / 2000, size=int(shared.sum()))
    link_image[shared] = np.maximum(owned_before[shared] - back, 0)
    pairs = np.unique(np.stack([link_post, link_image], axis=1), axis=0, return_index=True)[1]
    link_post, link_image, link_position = link_post[pairs], link_image[pairs], link_position[pairs]
    first_post = np.full(images, posts, dtype=np.int64)
    np.minimum.at(first_post, link_image, link_post)
    image_seconds = post_seconds[first_post] + 60

    def image_rows() -> Any:
        for start in range(0, images, CHUNK):
            stop = min(images, start + CHUNK)
            stamps = _timestamps(image_seconds[start:stop])
            yield (
                (
                    i,
                    f"{i:064d}",
                    f"https://img.example/{i}.jpg",
                    "classified",
                    1,
                    "image/jpeg",
                    stamp,
                    stamp,
                    stamp,
                )
                for i, stamp in zip(range(start + 1, stop + 1), stamps, strict=True)
            )

    _copy(
        engine,
        "images",
        "id, url_hash, url, state, attempts, content_type, queued_at, fetched_at, classified_at",
        image_rows,
    )

    def link_rows() -> Any:
        for start in range(0, link_post.size, CHUNK):
            stop = min(link_post.size, start + CHUNK)
            yield zip(
                (link_post[start:stop] + 1).tolist(),
                (link_image[start:stop] + 1).tolist(),
                link_position[start:stop].tolist(),
                strict=True,
            )

    _copy(engine, "post_images", "post_id, image_id, position", link_rows)

    # classifications: every image by v1, 35 % again by v2, 10 % by v3
    versions = [np.arange(images)]
    versions.append(np.flatnonzero(rng.random(images) < 0.35))
    versions.append(np.flatnonzero(rng.random(images) < 0.10))
    class_image = np.concatenate(versions)
    class_version = np.concatenate([np.full(v.size, k) for k, v in enumerate(versions)])
    classifications = class_image.size
    counts = rng.choice(
        [0, 1, 2, 3], size=classifications, p=_detection_count_shares(detections, classifications)
    )
    class_seconds = image_seconds[class_image] + class_version * 86400 * 30 + 120

    def classification_rows() -> Any:
        for start in range(0, classifications, CHUNK):
            stop = min(classifications, start + CHUNK)
            stamps = _timestamps(class_seconds[start:stop])
            yield zip(
                range(start + 1, stop + 1),
                (class_image[start:stop] + 1).tolist(),
                [VERSIONS[v] for v in class_version[start:stop].tolist()],
                stamps,
                counts[start:stop].tolist(),
                strict=True,
            )

    _copy(
        engine,
        "classifications",
        "id, image_id, model_version, classified_at, detection_count",
        classification_rows,
    )

    detection_class = np.repeat(np.arange(classifications), counts)
    detection_rank = _positions(counts[counts > 0])
    total = detection_class.size
    brand = rng.choice(len(BRANDS), size=total, p=_zipf_weights(len(BRANDS), 1.0))
    probability = np.clip(rng.beta(5, 1.5, size=total), 0.3, 1.0)

    def detection_rows() -> Any:
        for start in range(0, total, CHUNK):
            stop = min(total, start + CHUNK)
            chunk_class = detection_class[start:stop]
            chunk_image = class_image[chunk_class]
            chunk_post = first_post[chunk_image]
            yield (
                (i, c, rank, image, post, source, VERSIONS[v], BRANDS[b], p, 10, 10, 200, 200, at)
                for i, c, rank, image, post, source, v, b, p, at in zip(
                    range(start + 1, stop + 1),
                    (chunk_class + 1).tolist(),
                    detection_rank[start:stop].tolist(),
                    (chunk_image + 1).tolist(),
                    (chunk_post + 1).tolist(),
                    source_of_post[chunk_post].tolist(),
                    class_version[chunk_class].tolist(),
                    brand[start:stop].tolist(),
                    np.round(probability[start:stop], 4).tolist(),
                    _timestamps(class_seconds[chunk_class]),
                    strict=True,
                )
            )

    _copy(
        engine,
        "detections",
        "id, classification_id, rank, image_id, post_id, source_id, model_version, brand, "
        "probability, x1, y1, x2, y2, detected_at",
        detection_rows,
    )
    with engine.begin() as connection:
        for table in ("sources", "posts", "images", "classifications", "detections"):
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
    return {
        "posts": posts,
        "images": images,
        "post_images": int(link_post.size),
        "classifications": classifications,
        "detections": total,
    }


def _positions(per_group: np.ndarray) -> np.ndarray:
    """0, 1, ... within each group of the given sizes, concatenated."""
    ends = np.cumsum(per_group)
    starts = np.repeat(ends - per_group, per_group)
    return np.arange(int(ends[-1]) if ends.size else 0) - starts


def _detection_count_shares(detections: int, classifications: int) -> list[float]:
    """Shares of 0..3 detections per classification whose mean gives ``detections`` in all."""
    mean = detections / classifications
    two, three = 0.1 * mean, 0.025 * mean
    one = mean - 2 * two - 3 * three
    return [1 - one - two - three, one, two, three]


# --- timing ------------------------------------------------------------------------------------


def _median_seconds(action: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _cli(url: str, arguments: Sequence[str]) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "MONITOR_DATABASE_URL": url, "MONITOR_HOME": str(RESULTS / "home")}
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "monitor"), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def time_reports(url: str, brands: dict[str, str], runs: int) -> list[dict[str, Any]]:
    """``monitor report`` end to end, per brand, window and format."""
    last_day = date(2026, 11, 30)
    windows = {
        "whole history": [],
        "last year": ["--since", str(last_day - timedelta(days=364))],
        "one month": ["--since", "2026-06-01", "--until", "2026-06-30"],
    }
    rows = []
    for label, brand in brands.items():
        for window, flags in windows.items():
            for output in ("table", "json", "csv"):
                arguments = ["report", "--brand", brand, "--format", output, *flags]
                result = _cli(url, arguments)
                if result.returncode != 0:
                    raise RuntimeError(f"{arguments}: {result.stderr.strip()}")
                seconds = _median_seconds(lambda a=arguments: _cli(url, a), runs)
                rows.append(
                    {"what": f"report {label} ({brand}), {window}, {output}", "seconds": seconds}
                )
    unknown = ["report", "--brand", "no-such-brand"]
    result = _cli(url, unknown)
    assert result.returncode == 1 and "known brands" in result.stderr, result.stderr
    rows.append(
        {
            "what": "report, unknown brand (error)",
            "seconds": _median_seconds(lambda: _cli(url, unknown), runs),
        }
    )
    rows.append(
        {"what": "monitor --help", "seconds": _median_seconds(lambda: _cli(url, ["--help"]), runs)}
    )
    return rows


def readme_queries() -> list[str]:
    """The SQL blocks of the README's section on the SQL you can run.

    The exactness tests run these same blocks, so every query the bench times is one they check.
    """
    section = (ROOT / "README.md").read_text().split("## The schema and SQL you can run", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks, current = [], []
    for line in section.splitlines():
        if line.startswith("    "):
            current.append(line.strip())
        elif current:
            blocks.append(" ".join(current))
            current = []
    if current:
        blocks.append(" ".join(current))
    return [block for block in blocks if block.upper().startswith(("SELECT", "WITH"))]


def time_queries(engine: Engine, runs: int) -> list[dict[str, Any]]:
    rows = []
    with engine.connect() as connection:
        for query in readme_queries():
            connection.execute(text(query)).all()
            seconds = _median_seconds(lambda q=query: connection.execute(text(q)).all(), runs)
            rows.append({"what": f"README: {query[:70]}...", "seconds": seconds})
    return rows


# --- the write path, side by side --------------------------------------------------------------


def previous_write(
    session: Session, images: Sequence[Any], verdicts: Sequence[Any], now: datetime
) -> None:
    """The write path before the summaries: per image a savepoint, the source post, the rows."""
    from sqlalchemy.exc import IntegrityError

    from monitor.storage.tables import Classification, DetectionRow, ImageState, Post, PostImage

    for image, detections in zip(images, verdicts, strict=True):
        classification = Classification(
            image_id=image.id,
            model_version="bench",
            classified_at=now,
            detection_count=len(detections),
        )
        try:
            with session.begin_nested():
                session.add(classification)
                session.flush()
        except IntegrityError:
            continue
        post = session.scalars(
            select(Post)
            .join(PostImage)
            .where(PostImage.image_id == image.id)
            .order_by(Post.id)
            .limit(1)
        ).one()
        for rank, detection in enumerate(detections):
            session.add(
                DetectionRow(
                    classification_id=classification.id,
                    rank=rank,
                    image_id=image.id,
                    post_id=post.id,
                    source_id=post.source_id,
                    model_version="bench",
                    brand=detection.brand,
                    probability=detection.probability,
                    x1=None,
                    y1=None,
                    x2=None,
                    y2=None,
                    detected_at=now,
                )
            )
        image.state = ImageState.CLASSIFIED
        image.classified_at = now


def time_writes(url: str, batches: int, seed: int) -> dict[str, Any]:
    """New posts with fetched images, classified 16 a batch by each path in turn.

    The previous path stores the classifications and keeps the bytes, as it did; the new one
    stores them with the summaries, then keeps the thumbnail and lets the bytes go, as the worker
    now does.
    """
    from monitor.domain import CollectedPost, Detection
    from monitor.storage import repository
    from monitor.storage.db import session_factory, session_scope
    from monitor.storage.tables import Image, ImageData, ImageState

    rng = np.random.default_rng(seed)
    sessions = session_factory(url)
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    image_ids: list[int] = []
    run = time.time_ns()  # new posts and images on every run
    with session_scope(sessions) as session:
        source = repository.list_sources(session=session)[0]
        posts = [
            CollectedPost(
                platform="mastodon",
                external_id=f"bench-{run}-{i}",
                url=None,
                author_handle=f"user{int(rng.integers(0, ACCOUNTS))}",
                text="bench",
                created_at=now,
                author_followers=100,
                image_urls=(f"https://bench.example/{run}/{i}.jpg",),
            )
            for i in range(batches * 32)
        ]
        stored = repository.store_posts(session=session, source=source, posts=posts, now=now)
        image_ids = stored.new_image_ids
        session.execute(
            Image.__table__.update().where(Image.id.in_(image_ids)).values(state=ImageState.FETCHED)
        )
        photo = os.urandom(PHOTO_BYTES)  # the fetched bytes both paths find (incompressible)
        session.execute(
            ImageData.__table__.insert(), [{"image_id": i, "data": photo} for i in image_ids]
        )
    thumbnail = os.urandom(THUMBNAIL_BYTES)
    weights = _zipf_weights(len(BRANDS), 1.0)

    def verdicts(count: int) -> list[list[Detection]]:
        found = rng.choice([0, 1, 2, 3], size=count, p=_detection_count_shares(10, 26))
        return [
            [
                Detection(BRANDS[int(rng.choice(len(BRANDS), p=weights))], 0.9, None)
                for _ in range(k)
            ]
            for k in found
        ]

    timings: dict[str, list[float]] = {"previous": [], "summaries": []}
    for batch in range(batches * 2):
        ids = image_ids[batch * 16 : (batch + 1) * 16]
        found = verdicts(len(ids))
        path = "previous" if batch % 2 == 0 else "summaries"
        started = time.perf_counter()
        with session_scope(sessions) as session:
            images = list(
                session.scalars(select(Image).where(Image.id.in_(ids)).order_by(Image.id))
            )
            if path == "previous":
                previous_write(session, images, found, now)
            else:
                repository.save_classifications(
                    session=session,
                    verdicts=list(zip(images, found, strict=True)),
                    model_version="bench",
                    now=now,
                )
                repository.keep_evidence(
                    session=session,
                    thumbnails={image.id: thumbnail for image in images},
                    drop_full_bytes=True,
                )
        timings[path].append(time.perf_counter() - started)
    previous, summaries = (
        statistics.median(timings["previous"]),
        statistics.median(timings["summaries"]),
    )
    return {
        "batches_each": batches,
        "previous_median_batch_seconds": previous,
        "summaries_median_batch_seconds": summaries,
        "ratio": summaries / previous,
    }


# --- sizes and checks --------------------------------------------------------------------------


def table_sizes(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT relname, pg_total_relation_size(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC"
            )
        )
        return {name: int(size) for name, size in rows}


def thumbnail_bytes(samples: int, side: int = 160) -> dict[str, float]:
    """Mean sizes of real photos and of the thumbnails monitor keeps of them (FlickrLogos-27)."""
    from PIL import Image as PILImage

    from monitor.images.thumbnail import make_thumbnail

    photos = sorted(PHOTOS.glob("*.jpg"))[:samples]
    if not photos:
        return {}
    full, small = [], []
    for path in photos:
        full.append(path.stat().st_size)
        with PILImage.open(path) as picture:
            small.append(len(make_thumbnail(picture, side=side)))
    return {"photos": len(photos), "photo_mean_bytes": float(np.mean(full)),
            "thumbnail_mean_bytes": float(np.mean(small)), "thumbnail_side": side}  # fmt: skip


def direct_check(
    engine: Engine, brand: str, since: date, until: date, report: dict[str, Any]
) -> None:
    """The report's totals against a count over the base tables (newest classification)."""
    query = text(
        """
        WITH current AS (
            SELECT DISTINCT ON (image_id) image_id, id FROM classifications
            ORDER BY image_id, classified_at DESC, id DESC
        ), shown AS (
            SELECT d.id AS detection_id, p.id AS post_id
            FROM detections d
            JOIN current c ON c.id = d.classification_id
            JOIN post_images pi ON pi.image_id = d.image_id
            JOIN posts p ON p.id = pi.post_id
            WHERE d.brand = :brand
              AND COALESCE(p.created_at, p.collected_at) >= :since
              AND COALESCE(p.created_at, p.collected_at) < :until
        )
        SELECT count(DISTINCT detection_id), count(DISTINCT post_id) FROM shown
        """
    )
    with engine.connect() as connection:
        detections, posts = connection.execute(
            query,
            {
                "brand": brand,
                "since": datetime.combine(since, datetime.min.time(), UTC),
                "until": datetime.combine(until + timedelta(days=1), datetime.min.time(), UTC),
            },
        ).one()
    assert (report["detections"], report["posts"]) == (detections, posts), (
        report["detections"],
        report["posts"],
        detections,
        posts,
    )


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--detections", type=int, default=1_000_000)
    parser.add_argument("--database", default="monitor_bench")
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write-batches", type=int, default=100)
    parser.add_argument("--reuse", action="store_true", help="keep the store built before")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument(
        "--upgrade-again",
        action="store_true",
        help="with --reuse: back to revision 0002 and `monitor db upgrade` again, timed",
    )
    parser.add_argument(
        "--only-writes", action="store_true", help="on the store built before, time the writes only"
    )
    arguments = parser.parse_args()

    from monitor.storage.db import upgrade_database

    url = make_url(arguments.admin_url).set(database=arguments.database).render_as_string(False)
    results: dict[str, Any] = {"detections_asked": arguments.detections, "machine": os.cpu_count()}
    if arguments.only_writes:
        results["load_average_before_timing"] = os.getloadavg()
        results["writes"] = time_writes(url, arguments.write_batches, arguments.seed + 1)
        results["load_average_after_timing"] = os.getloadavg()
        print(json.dumps(results, indent=2))
        return
    if not arguments.reuse:
        admin = create_engine(arguments.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {arguments.database}"))
            connection.execute(text(f"CREATE DATABASE {arguments.database}"))
        admin.dispose()
        upgrade_database(url, "0002")
        engine = create_engine(url)
        started = time.perf_counter()
        results["rows"] = build_store(engine, arguments.detections, arguments.seed)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
        results["build_seconds"] = time.perf_counter() - started
        print(f"built {results['rows']} in {results['build_seconds']:.0f} s", flush=True)
        results["sizes_before_upgrade"] = table_sizes(engine)
        started = time.perf_counter()
        upgrade_database(url)
        results["upgrade_seconds"] = time.perf_counter() - started
        print(f"upgrade (backfill) {results['upgrade_seconds']:.0f} s", flush=True)
        started = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
        results["vacuum_after_upgrade_seconds"] = time.perf_counter() - started
    if arguments.reuse and arguments.upgrade_again:
        from alembic import command

        from monitor.storage.db import alembic_config

        command.downgrade(alembic_config(url), "0002")
        started = time.perf_counter()
        upgrade_database(url)
        results["upgrade_seconds"] = time.perf_counter() - started
        print(f"upgrade (backfill) {results['upgrade_seconds']:.0f} s", flush=True)
        started = time.perf_counter()
        vacuum = create_engine(url, isolation_level="AUTOCOMMIT")
        with vacuum.connect() as connection:
            connection.execute(text("VACUUM ANALYZE"))
        vacuum.dispose()
        results["vacuum_after_upgrade_seconds"] = time.perf_counter() - started
    engine = create_engine(url)
    results["sizes"] = table_sizes(engine)
    with engine.connect() as connection:
        ranked = (
            connection.execute(
                text("SELECT brand FROM brand_post_days GROUP BY brand ORDER BY sum(posts) DESC")
            )
            .scalars()
            .all()
        )
    brands = {"most frequent": ranked[0], "rare": ranked[-1]}
    report = json.loads(
        _cli(
            url,
            [
                "report",
                "--brand",
                ranked[-1],
                "--format",
                "json",
                "--since",
                "2026-06-01",
                "--until",
                "2026-06-30",
            ],
        ).stdout
    )
    direct_check(engine, ranked[-1], date(2026, 6, 1), date(2026, 6, 30), report)
    results["checked_against_base_tables"] = {"brand": ranked[-1], "window": "2026-06", **{
        k: report[k] for k in ("detections", "posts")}}  # fmt: skip
    results["load_average_before_timing"] = os.getloadavg()
    results["reports"] = time_reports(url, brands, arguments.runs)
    results["queries"] = time_queries(engine, arguments.runs)
    results["writes"] = time_writes(url, arguments.write_batches, arguments.seed)
    results["load_average_after_writes"] = os.getloadavg()
    results["load_average_after_timing"] = os.getloadavg()
    results["thumbnails"] = thumbnail_bytes(200)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"analytics_scale_{arguments.detections}.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(markdown(results))
    print(f"written to {out}")


def markdown(results: dict[str, Any]) -> str:
    lines = ["| measured | seconds |", "| --- | --- |"]
    for key in ("upgrade_seconds", "vacuum_after_upgrade_seconds"):
        if key in results:
            lines.append(f"| {key.replace('_', ' ')} | {results[key]:.1f} |")
    for row in results["reports"] + results["queries"]:
        lines.append(f"| {row['what']} | {row['seconds']:.3f} |")
    writes = results["writes"]
    lines.append(
        f"| write, 16 classifications: previous {writes['previous_median_batch_seconds']:.4f} s, "
        f"with summaries {writes['summaries_median_batch_seconds']:.4f} s | ratio "
        f"{writes['ratio']:.2f} |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
