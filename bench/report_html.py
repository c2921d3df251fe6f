"""The HTML brand report's time against the JSON report's, side by side on a store built here.

    python bench/report_html.py [--posts 20000] [--keep-every 2] [--gallery 24] [--rounds 3]
                                [--database-url postgresql+psycopg://...]

It fills a fresh database (a SQLite file in a temporary folder by default; an empty PostgreSQL
database, migrated here, when ``--database-url`` is given) with posts over 60 days on four
platforms, one 640x480 JPEG each (its bytes kept for one image in ``--keep-every``) and one or two
detections per photo across four brands. Then, round after round in the same process, it times the
JSON report (``build_report`` and its JSON text, as ``monitor report`` writes it) and the HTML
report (``build_report`` and ``build_html_report``: chart, gallery with thumbnails, page) for the
brand ``acme`` (about a quarter of the detections), and on its own the time ``evidence_image``
takes to make 48 thumbnails (a full gallery's photos). The result is printed and written to
``bench/results/report_html.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from monitor.analytics.gallery import evidence_image
from monitor.analytics.html_export import build_html_report
from monitor.analytics.report import build_report
from monitor.cli.report_commands import ReportFormat, render_text
from monitor.storage.db import get_engine, session_factory, upgrade_database
from monitor.storage.tables import (
    Classification,
    DetectionRow,
    ImageData,
    Post,
    PostImage,
    Source,
)
from monitor.storage.tables import (
    Image as ImageRow,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BRANDS = ("acme", "globex", "initech", "umbrella")
PLATFORMS = ("mastodon:mastodon.social", "bluesky", "reddit", "rss:https://blog.example/feed")
START = datetime(2026, 9, 1, tzinfo=UTC)
SIZE = (640, 480)


def photos(count: int, rng: random.Random) -> list[bytes]:
    """A few distinct photo-sized JPEGs, reused across the store."""
    made = []
    for _ in range(count):
        picture = Image.new("RGB", SIZE, tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(picture)
        for _ in range(30):
            x, y = rng.randrange(SIZE[0]), rng.randrange(SIZE[1])
            colour = tuple(rng.randrange(256) for _ in range(3))
            draw.ellipse((x, y, x + rng.randrange(20, 200), y + rng.randrange(20, 200)), colour)
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=88)
        made.append(buffer.getvalue())
    return made


def fill(session: Session, *, posts: int, keep_every: int, seed: int = 1) -> None:
    """Bulk-insert the store: rows as the pipeline writes them, without running it."""
    rng = random.Random(seed)
    jpegs = photos(8, rng)
    now = START + timedelta(days=61)
    session.execute(
        insert(Source),
        [{"id": 1, "name": "bench", "kind": "fake", "options": {}, "created_at": now}],
    )
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in ("p", "i", "d", "pi", "c", "x")}
    detection_id = 0
    for number in range(1, posts + 1):
        created = START + timedelta(seconds=rng.randrange(60 * 86400))
        url = f"https://img.example/{number}.jpg"
        rows["p"].append(
            {
                "id": number,
                "source_id": 1,
                "platform": rng.choice(PLATFORMS),
                "external_id": str(number),
                "url": f"https://example.social/{number}",
                "author_handle": f"user{int(rng.paretovariate(1.2)) % 5000}",
                "author_followers": rng.randrange(10, 100_000),
                "text": "a photo of my day" if rng.random() < 0.8 else "look: acme!",
                "created_at": created,
                "collected_at": now,
            }
        )
        rows["i"].append(
            {
                "id": number,
                "url_hash": hashlib.sha256(url.encode()).hexdigest(),
                "url": url,
                "state": "classified",
                "attempts": 0,
                "width": SIZE[0],
                "height": SIZE[1],
                "queued_at": now,
            }
        )
        if number % keep_every == 0:
            rows["d"].append({"image_id": number, "data": jpegs[number % len(jpegs)]})
        rows["pi"].append({"post_id": number, "image_id": number, "position": 0})
        found = rng.sample(BRANDS, 2 if rng.random() < 0.1 else 1)
        rows["c"].append(
            {
                "id": number,
                "image_id": number,
                "model_version": "bench",
                "classified_at": now,
                "detection_count": len(found),
            }
        )
        for rank, brand in enumerate(found):
            detection_id += 1
            x, y = rng.randrange(400), rng.randrange(300)
            rows["x"].append(
                {
                    "id": detection_id,
                    "classification_id": number,
                    "rank": rank,
                    "image_id": number,
                    "post_id": number,
                    "source_id": 1,
                    "model_version": "bench",
                    "brand": brand,
                    "probability": rng.uniform(0.3, 1.0),
                    "x1": x,
                    "y1": y,
                    "x2": x + rng.randrange(40, 240),
                    "y2": y + rng.randrange(40, 180),
                    "detected_at": now,
                }
            )
    for table, key in (
        (Post, "p"),
        (ImageRow, "i"),
        (ImageData, "d"),
        (PostImage, "pi"),
        (Classification, "c"),
        (DetectionRow, "x"),
    ):
        for start in range(0, len(rows[key]), 5000):
            session.execute(insert(table), rows[key][start : start + 5000])


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--keep-every", type=int, default=2, help="keep 1 image's bytes in N")
    parser.add_argument("--gallery", type=int, default=24, help="cards per gallery section")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (migrated here)")
    arguments = parser.parse_args()

    folder = tempfile.TemporaryDirectory()
    url = arguments.database_url or f"sqlite:///{Path(folder.name) / 'bench.db'}"
    upgrade_database(url)
    sessions = session_factory(url)
    with sessions.begin() as session:
        if session.scalar(select(func.count()).select_from(Post)):
            raise SystemExit(f"{url} already holds posts: give an empty database")
        fill(session, posts=arguments.posts, keep_every=arguments.keep_every)
    with sessions() as session:
        brand = "acme"

        def json_report() -> str:
            return render_text(build_report(session=session, brand=brand), ReportFormat.json)

        def html_report() -> str:
            return build_html_report(
                session=session,
                report=build_report(session=session, brand=brand),
                generated_at=datetime.now(UTC),
                gallery_size=arguments.gallery,
            )

        json_report(), html_report()  # warm the caches both read
        json_times, html_times = [], []
        page = ""
        for _ in range(arguments.rounds):
            json_times.append(timed(json_report)[0])
            seconds, page = timed(html_report)
            html_times.append(seconds)
        brand_detections = build_report(session=session, brand=brand).detections
        kept = [n for n in range(1, arguments.posts + 1) if n % arguments.keep_every == 0][:48]
        thumbnails, _ = timed(
            lambda: [evidence_image(session=session, image_id=image_id) for image_id in kept]
        )
    get_engine(url).dispose()
    folder.cleanup()
    best_json, best_html = min(json_times), min(html_times)
    result = {
        "database": url.split(":", 1)[0],
        "posts": arguments.posts,
        "brand": "acme",
        "brand_detections": brand_detections,
        "kept_bytes_every": arguments.keep_every,
        "gallery_per_section": arguments.gallery,
        "embedded_photos": page.count('src="data:image/jpeg;base64,'),
        "linked_photos": page.count('<img referrerpolicy="no-referrer"'),
        "page_bytes": len(page.encode()),
        "json_seconds": [round(s, 3) for s in json_times],
        "html_seconds": [round(s, 3) for s in html_times],
        "html_over_json": round(best_html / best_json, 2),
        "html_minus_json_seconds": round(best_html - best_json, 3),
        "thumbnails_48_seconds": round(thumbnails, 3),
        "machine": platform.platform(),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report_html.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
