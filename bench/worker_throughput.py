"""Photos per second of one real Celery classify worker, end to end, model by model.

    python bench/worker_throughput.py --model MODEL_DIR [--model MODEL_DIR ...] [--photos DIR]
        [--count 96] [--database-url URL] [--broker-url URL] [--runtime auto|keras|litert]

What a classify worker does in production is more than the model: it reads each image's stored
bytes from PostgreSQL, decodes them at the model's size, runs the model, makes the thumbnail and
writes the detections and daily totals back. This bench times all of it, for each model in turn on
the same photos:

1. the bench database is migrated (as ``monitor db upgrade`` does) and emptied, and the broker's
   Redis database is emptied, so no earlier run's rows or messages take part;
2. a ``folder`` source over the photos is collected and fetched in this process through the
   pipeline's own flows, with a queue that stops before classification: the images are then
   exactly what production holds after fetch (state ``fetched``, bytes stored, waiting). Not timed;
3. one worker (``celery -A workers.celery_app worker -Q classify --concurrency 1 --pool prefork``)
   starts; once it says it is ready, it classifies one batch of extra photos, not counted, so its
   model is loaded and traced before the clock starts;
4. the clock runs from handing the counted images to the broker, the way the pipeline hands them
   on after fetch (``CeleryWorkQueue.classify``, batches of 16), until PostgreSQL shows every one
   of them classified (or failed), looked at every 0.2 s. The JSON also has ``last_stamp_seconds``,
   to the newest ``classified_at`` stamp (a little early, where the poll is up to 0.2 s late);
5. the worker is stopped.

Each model's line is printed and every result is written to
``bench/results/worker_throughput.json``. The bench empties its database and its Redis database:
give it ones of their own (the database's name must contain "bench"). Bad inputs (no photos, an
unreachable database or broker, a missing model) stop it with one line and exit code 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from monitor import pipeline
from monitor.collectors.base import validate_options
from monitor.collectors.folder import check_directory, find_image_files
from monitor.config import Settings, load_settings
from monitor.exceptions import MonitorError
from monitor.inference.model_dir import LITERT_FILE, ModelMetadata, read_metadata
from monitor.queue import CeleryWorkQueue, chunks
from monitor.storage import repository
from monitor.storage.db import get_engine, session_factory, session_scope, upgrade_database
from monitor.storage.tables import Base, DetectionRow, Image, ImageState

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ROOT.parent / "shared" / "datasets" / "flickr_logos_27" / "images"
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/monitor_bench"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/13"
RESULTS = ROOT / "bench" / "results"

CLASSIFY_BATCH_SIZE = 16
"""Images per classify task, as the worker is configured in production (MONITOR_CLASSIFY_BATCH_SIZE)."""
WARMUP_PHOTOS = CLASSIFY_BATCH_SIZE
"""One full batch: the model is loaded and its batch shape traced before the clock starts."""
POLL_SECONDS = 0.2
WORKER_READY_SECONDS = 180.0
"""How long a worker may take to start (importing Celery and the project, not the model)."""
WARMUP_SECONDS = 600.0
"""How long loading the model and classifying the warm-up batch may take."""
SOURCE_NAME = "bench-photos"


class BenchError(Exception):
    """A bad input or an unreachable service: one line for the user, exit code 2."""


@dataclass
class ModelUnderTest:
    """A model directory, what it is, and how the worker will run it."""

    model_dir: Path
    metadata: ModelMetadata
    runtime: str
    """What the worker runs: "keras" or "litert" (``auto`` resolved as ``load_classifier`` does)."""


@dataclass
class StoredPhotos:
    """The fetched images waiting for classification, split into warm-up and counted ones."""

    warmup_ids: list[int]
    counted_ids: list[int]
    fetch_failed: int
    digest: str
    """A short hash of the counted photos' URLs, so two models' runs can be seen to share them."""


@dataclass
class FetchOnlyQueue:
    """The embedded work queue's collect and fetch steps, keeping classification for the worker.

    ``collect_source`` hands new images to ``fetch``, which runs ``fetch_images`` in batches just as
    ``InProcessWorkQueue`` does; the ids that flow would then classify are only recorded, so the
    images stay ``fetched`` with their bytes stored, waiting for the worker.
    """

    services: pipeline.Services
    fetcher: Any = None
    waiting: list[int] = field(default_factory=list)

    def collect(self, source_name: str, *, scheduled: bool) -> None:
        pipeline.collect_source(
            services=self.services, source_name=source_name, queue=self, scheduled=scheduled
        )

    def fetch(self, image_ids: Sequence[int]) -> None:
        if self.fetcher is None:
            self.fetcher = pipeline.build_fetcher(self.services)
        for batch in chunks(image_ids, self.services.settings.fetch_batch_size):
            pipeline.fetch_images(
                services=self.services, image_ids=batch, fetcher=self.fetcher, queue=self
            )

    def classify(self, image_ids: Sequence[int]) -> None:
        self.waiting.extend(image_ids)


# --- checks before anything runs ---------------------------------------------------------------


def model_under_test(model_dir: Path, runtime: str) -> ModelUnderTest:
    """Read a model directory and resolve how the worker will run it, refusing what it cannot.

    The same choice as ``load_classifier``: a detector runs from its int8 file under "litert", and
    under "auto" when it has one and TensorFlow sees no GPU; everything else runs in Keras. Only
    that last case imports TensorFlow here (to look for a GPU; nothing is loaded on it).
    """
    model_dir = model_dir.resolve()
    if not model_dir.is_dir():
        raise BenchError(f"model directory {model_dir} does not exist")
    metadata = read_metadata(model_dir)
    has_litert = (model_dir / LITERT_FILE).is_file()
    if runtime == "litert" and not (metadata.architecture == "detector" and has_litert):
        raise BenchError(
            f"{model_dir} has no int8 LiteRT file ({LITERT_FILE}) for --runtime litert"
        )
    if metadata.architecture != "detector" or runtime == "keras" or not has_litert:
        return ModelUnderTest(model_dir=model_dir, metadata=metadata, runtime="keras")
    if runtime == "litert":
        return ModelUnderTest(model_dir=model_dir, metadata=metadata, runtime="litert")
    from monitor.inference._tensorflow import import_tensorflow

    on_gpu = bool(import_tensorflow().config.list_physical_devices("GPU"))
    return ModelUnderTest(
        model_dir=model_dir, metadata=metadata, runtime="keras" if on_gpu else "litert"
    )


def check_photos(photos: Path, needed: int) -> None:
    """Refuse a folder in which the folder source would see fewer than ``needed`` image files."""
    try:
        check_directory(photos)
    except MonitorError as exc:
        raise BenchError(f"no photos: {exc}") from exc
    found = sum(1 for _ in find_image_files(photos))
    if found < needed:
        raise BenchError(
            f"not enough photos: {photos} has {found} image files, the bench needs {needed} "
            f"(--count plus {WARMUP_PHOTOS} that warm the worker up)"
        )


def ensure_database(url: str) -> None:
    """Create the bench database if it is missing; refuse a database that is not the bench's.

    Every run empties the database, so a name without "bench" in it (most likely a real one given
    by mistake) is refused rather than emptied.
    """
    import psycopg

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise BenchError(
            f"--database-url must be a postgresql+psycopg:// URL, got {parsed.drivername}"
        )
    name = parsed.database or ""
    if "bench" not in name:
        raise BenchError(
            f"refusing to empty database {name!r}: the bench empties its database, so its name "
            "must contain 'bench'"
        )
    try:
        with psycopg.connect(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username,
            password=parsed.password,
            dbname="postgres",
            autocommit=True,
            connect_timeout=5,
        ) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists is None:
                connection.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BenchError(
            f"cannot reach PostgreSQL at {parsed.render_as_string(hide_password=True)}: {first_line}"
        ) from exc


def empty_broker(broker_url: str) -> None:
    """Empty the broker's Redis database: an earlier run's messages would name reused image ids."""
    import redis

    if not broker_url.startswith(("redis://", "rediss://")):
        raise BenchError(f"--broker-url must be a redis:// URL, got {broker_url}")
    try:
        with redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5) as client:
            client.flushdb()
    except redis.RedisError as exc:
        raise BenchError(f"cannot reach the broker at {broker_url}: {exc}") from exc


# --- the stored state before classification ----------------------------------------------------


def clean_schema(database_url: str) -> None:
    """Migrate to the newest schema and empty every table (ids start from 1 again)."""
    upgrade_database(database_url)
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with get_engine(database_url).begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def store_fetched_photos(settings: Settings, photos: Path) -> StoredPhotos:
    """Collect and fetch ``max_posts_per_run`` photos in this process, classifying none.

    The folder source reports files oldest first (then by path), and each model starts from an
    empty database, so every model gets the same photos.
    """
    services = pipeline.Services.from_settings(settings)
    with session_scope(services.sessions) as session:
        repository.add_source(
            session=session,
            name=SOURCE_NAME,
            kind="folder",
            options=validate_options("folder", {"path": str(photos)}),
            every_seconds=None,
            now=services.clock(),
        )
    queue = FetchOnlyQueue(services=services)
    report = pipeline.collect_source(services=services, source_name=SOURCE_NAME, queue=queue)
    if report.error:
        raise BenchError(f"collecting {photos} failed: {report.error}")
    waiting = sorted(queue.waiting)
    if len(waiting) <= WARMUP_PHOTOS:
        raise BenchError(f"only {len(waiting)} of the photos in {photos} could be fetched")
    counted = waiting[WARMUP_PHOTOS:]
    with session_scope(services.sessions) as session:
        urls = session.scalars(select(Image.url).where(Image.id.in_(counted)).order_by(Image.url))
        digest = hashlib.sha256("\n".join(urls).encode()).hexdigest()[:12]
    return StoredPhotos(
        warmup_ids=waiting[:WARMUP_PHOTOS],
        counted_ids=counted,
        fetch_failed=report.new_images - len(waiting),
        digest=digest,
    )


def finished(settings: Settings, image_ids: Sequence[int]) -> tuple[int, int]:
    """How many of these images are classified, and how many failed."""
    sessions = session_factory(settings.database)
    with session_scope(sessions) as session:
        rows = session.execute(
            select(Image.state, func.count())
            .where(Image.id.in_(image_ids))
            .where(Image.state.in_([ImageState.CLASSIFIED, ImageState.FAILED]))
            .group_by(Image.state)
        )
        counts = {state: count for state, count in rows.all()}
    return counts.get(ImageState.CLASSIFIED, 0), counts.get(ImageState.FAILED, 0)


def last_classified_at(settings: Settings, image_ids: Sequence[int]) -> datetime | None:
    """The newest ``classified_at`` stamp of these images.

    The worker stamps a batch just before writing it, so this end is a little early, where the
    polled one is up to a poll late: the two bracket the true end (a check for short runs).
    """
    with session_scope(session_factory(settings.database)) as session:
        return session.scalar(select(func.max(Image.classified_at)).where(Image.id.in_(image_ids)))


def detection_count(settings: Settings, image_ids: Sequence[int]) -> int:
    """Detection rows stored for these images (a check that the worker wrote its verdicts)."""
    with session_scope(session_factory(settings.database)) as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(DetectionRow)
                .where(DetectionRow.image_id.in_(image_ids))
            )
            or 0
        )


# --- the worker --------------------------------------------------------------------------------


class Worker:
    """One ``celery worker -Q classify`` process (and its pool child) in its own process group."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "workers.celery_app",
                    "worker",
                    "-Q",
                    "classify",
                    "--concurrency",
                    "1",
                    "--pool",
                    "prefork",
                    "--loglevel",
                    "info",
                    "--hostname",
                    "worker-bench@%h",
                    "--without-gossip",
                    "--without-mingle",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        """Raise, with the end of its log, if the worker has exited."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise BenchError(
                f"the worker exited with code {self.process.returncode}; "
                f"the end of its log:\n{self.log_tail()}"
            )

    def wait_until_ready(self, timeout: float) -> None:
        """Wait for Celery's "ready." line: the worker consumes from the queue from then on."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if " ready." in self.log_path.read_text(errors="replace"):
                return
            time.sleep(POLL_SECONDS)
        raise BenchError(f"the worker was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the group (a warm shutdown), SIGKILL it if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def worker_env(
    *, model: ModelUnderTest, runtime_setting: str, database_url: str, broker_url: str, home: Path
) -> dict[str, str]:
    """The worker's environment: this shell's without its ``MONITOR_*`` settings, plus the bench's.

    ``MONITOR_HOME`` is a folder of the bench's, so no config file of the user's weighs in.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("MONITOR_")}
    env.update(
        MONITOR_HOME=str(home),
        MONITOR_DATABASE_URL=database_url,
        MONITOR_BROKER_URL=broker_url,
        MONITOR_MODEL_DIR=str(model.model_dir),
        MONITOR_MODEL_RUNTIME=runtime_setting,
        MONITOR_CLASSIFY_BATCH_SIZE=str(CLASSIFY_BATCH_SIZE),
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=str(ROOT),
    )
    return env


def wait_until_finished(
    settings: Settings, worker: Worker, image_ids: Sequence[int], timeout: float, what: str
) -> tuple[int, int]:
    """Poll PostgreSQL every 0.2 s until every image is classified or failed; (classified, failed)."""
    deadline = time.monotonic() + timeout
    while True:
        classified, failed = finished(settings, image_ids)
        if classified + failed == len(image_ids):
            return classified, failed
        worker.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(
                f"{what}: {classified + failed} of {len(image_ids)} images done after "
                f"{timeout:.0f} s; the end of the worker's log:\n{worker.log_tail()}"
            )
        time.sleep(POLL_SECONDS)


# --- one model ---------------------------------------------------------------------------------


def bench_model(
    model: ModelUnderTest, arguments: argparse.Namespace, work_dir: Path
) -> dict[str, Any]:
    """Prepare the stored photos, start a worker, time it through the counted images.

    ``work_dir`` is this model's own: its worker's home and log (one directory may be given twice,
    once per runtime, so the version cannot name them).
    """
    home = work_dir / "home"
    settings = load_settings(
        home=home,
        database_url=arguments.database_url,
        broker_url=None,
        max_posts_per_run=WARMUP_PHOTOS + arguments.count,
    )
    clean_schema(settings.database)
    empty_broker(arguments.broker_url)
    stored = store_fetched_photos(settings, arguments.photos)
    queue = CeleryWorkQueue(
        broker_url=arguments.broker_url,
        fetch_batch_size=settings.fetch_batch_size,
        classify_batch_size=CLASSIFY_BATCH_SIZE,
        visibility_timeout=settings.broker_visibility_timeout_seconds,
    )
    env = worker_env(
        model=model,
        runtime_setting=arguments.runtime,
        database_url=settings.database,
        broker_url=arguments.broker_url,
        home=home,
    )
    worker = Worker(env, work_dir / "worker.log")
    started = time.perf_counter()
    worker.start()
    try:
        worker.wait_until_ready(WORKER_READY_SECONDS)
        ready_seconds = time.perf_counter() - started
        warmup_started = time.perf_counter()
        queue.classify(stored.warmup_ids)
        wait_until_finished(settings, worker, stored.warmup_ids, WARMUP_SECONDS, "warm-up")
        warmup_seconds = time.perf_counter() - warmup_started

        enqueued_at = datetime.now(UTC)
        clock_started = time.perf_counter()
        queue.classify(stored.counted_ids)
        classified, failed = wait_until_finished(
            settings, worker, stored.counted_ids, arguments.timeout, "timed run"
        )
        seconds = time.perf_counter() - clock_started
    finally:
        worker.stop()
    stamped = last_classified_at(settings, stored.counted_ids)
    stamped_seconds = (stamped - enqueued_at).total_seconds() if stamped is not None else None
    return {
        "model_dir": str(model.model_dir),
        "version": model.metadata.version,
        "architecture": model.metadata.architecture,
        "backbone": model.metadata.backbone,
        "input_size": model.metadata.input_size,
        "runtime_setting": arguments.runtime,
        "runtime": model.runtime,
        "photos": len(stored.counted_ids),
        "classified": classified,
        "failed": failed,
        "fetch_failed": stored.fetch_failed,
        "detections": detection_count(settings, stored.counted_ids),
        "seconds": round(seconds, 3),
        "photos_per_second": round(len(stored.counted_ids) / seconds, 3),
        "last_stamp_seconds": None if stamped_seconds is None else round(stamped_seconds, 3),
        "worker_ready_seconds": round(ready_seconds, 2),
        "warmup_photos": len(stored.warmup_ids),
        "warmup_seconds": round(warmup_seconds, 2),
        "photos_digest": stored.digest,
    }


def run(arguments: argparse.Namespace) -> list[dict[str, Any]]:
    """Check every input first, then bench each model in turn and write the results."""
    if arguments.count < 1:
        raise BenchError(f"--count must be at least 1, got {arguments.count}")
    models = [model_under_test(path, arguments.runtime) for path in arguments.model]
    arguments.photos = arguments.photos.resolve()
    check_photos(arguments.photos, WARMUP_PHOTOS + arguments.count)
    ensure_database(arguments.database_url)
    empty_broker(arguments.broker_url)
    results = []
    with tempfile.TemporaryDirectory(prefix="worker-bench-") as work_dir:
        for number, model in enumerate(models):
            model_work_dir = Path(work_dir, f"model-{number}")
            model_work_dir.mkdir()
            result = bench_model(model, arguments, model_work_dir)
            results.append(result)
            print(
                f"model {result['version']} ({result['architecture']}, {result['runtime']}): "
                f"{result['photos']} photos in {result['seconds']:.2f} s = "
                f"{result['photos_per_second']:.2f} photos/s",
                flush=True,
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "photos_dir": str(arguments.photos),
        "count": arguments.count,
        "classify_batch_size": CLASSIFY_BATCH_SIZE,
        "worker": "celery -A workers.celery_app worker -Q classify --concurrency 1 --pool prefork",
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "cpus": os.cpu_count(),
        "models": results,
    }
    (RESULTS / "worker_throughput.json").write_text(json.dumps(summary, indent=2) + "\n")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model", type=Path, action="append", required=True, help="a model directory (repeatable)"
    )
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--count", type=int, default=96, help="photos timed per model")
    parser.add_argument(
        "--database-url", default=DEFAULT_DATABASE_URL, help="emptied; its name must say bench"
    )
    parser.add_argument(
        "--broker-url", default=DEFAULT_BROKER_URL, help="a Redis database of its own (emptied)"
    )
    parser.add_argument("--runtime", choices=["auto", "keras", "litert"], default="auto")
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds a model's timed run may take"
    )
    arguments = parser.parse_args()
    try:
        run(arguments)
    except (BenchError, MonitorError) as exc:
        print(f"worker_throughput: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
