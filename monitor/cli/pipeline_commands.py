"""Commands that run the pipeline: db, collect, requeue, status, worker, beat."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from monitor.cli.common import console, error_console, services, settings
from monitor.exceptions import ConfigurationError

if TYPE_CHECKING:
    from monitor.pipeline import InProcessWorkQueue

# Each command imports the pipeline, storage and rich.table when it runs, so `monitor --help`
# and the commands that need none of them start fast.

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to the configured database."""
    from monitor.storage.db import upgrade_database

    upgrade_database(settings().database)
    console.print("database is at the newest schema")


def collect(
    names: Annotated[list[str] | None, typer.Argument(help="Sources to collect.")] = None,
    all_sources: Annotated[bool, typer.Option("--all", help="Collect every source.")] = False,
) -> None:
    """Pull new posts, store them once, and queue their images (in-process without a broker)."""
    if not names and not all_sources:
        raise ConfigurationError("name one or more sources, or pass --all")
    from rich.table import Table

    from monitor.cli.progress import progress_display
    from monitor.pipeline import InProcessWorkQueue, collect_all, work_queue_for

    runtime = services()
    with progress_display() as progress:
        task = progress.add_task("collecting", total=None, detail="")

        def source_started(name: str, number: int, count: int) -> None:
            progress.update(
                task, description=f"source {number + 1}/{count} {name}", completed=0, total=None
            )

        def images_done(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, detail="images fetched/classified")

        queue = work_queue_for(runtime, progress=images_done)
        reports = collect_all(
            services=runtime,
            queue=queue,
            source_names=None if all_sources else names,
            on_start=source_started,
        )
    table = Table("source", "posts seen", "new posts", "new images", "skipped images", "result")
    for report in reports:
        result = report.error or report.skipped or "ok"
        table.add_row(
            report.source,
            str(report.posts_seen),
            str(report.new_posts),
            str(report.new_images),
            str(report.skipped_images),
            f"[red]{result}[/red]" if report.error else result,
        )
    console.print(table)
    if isinstance(queue, InProcessWorkQueue):
        _print_in_process_summary(queue)
    else:
        console.print("images queued for the workers; follow progress with `monitor status`")
    if any(report.error for report in reports):
        raise typer.Exit(1)


def _print_in_process_summary(queue: InProcessWorkQueue) -> None:
    fetched = sum(len(report.fetched) for report in queue.fetch_reports)
    failed = sum(len(report.failed) for report in queue.fetch_reports)
    classified = sum(report.classified for report in queue.classify_reports)
    detections = sum(report.detections for report in queue.classify_reports)
    console.print(
        f"images: {fetched} fetched, {failed} failed; {classified} classified, "
        f"{detections} detections stored"
    )
    if queue.model_error:
        error_console.print(
            f"[yellow]not classified yet:[/yellow] {queue.model_error}\n"
            "train a model (`monitor train`) or set MONITOR_MODEL_DIR, then run `monitor requeue`"
        )


def requeue(
    stale_only: Annotated[
        bool,
        typer.Option(
            "--stale-only",
            help="Only images waiting longer than requeue_after_seconds (what beat does).",
        ),
    ] = False,
    reclassify: Annotated[
        bool,
        typer.Option(
            "--reclassify",
            help="Give every classified image to the current model again (a newer model); "
            "images whose bytes are gone are fetched again.",
        ),
    ] = False,
) -> None:
    """Queue again every image still waiting to be fetched or classified.

    For work a broker lost (it was down or restarted empty) or that waited for a model. Images
    whose task is still queued get a second one, which finds the work done. ``--reclassify``
    gives every classified image to the current model again.
    """
    from monitor.pipeline import InProcessWorkQueue, reclassify_all, requeue_stale, work_queue_for

    runtime = services()
    queue = work_queue_for(runtime)
    if reclassify:
        report = reclassify_all(services=runtime, queue=queue)
    else:
        report = requeue_stale(
            services=runtime, queue=queue, older_than_seconds=None if stale_only else 0
        )
    console.print(f"re-queued {report.fetch} images to fetch and {report.classify} to classify")
    if isinstance(queue, InProcessWorkQueue):
        _print_in_process_summary(queue)


def status() -> None:
    """Counts of posts and images by state, and the last collection of each source."""
    from rich.table import Table

    from monitor.storage import repository
    from monitor.storage.db import session_scope

    runtime = services()
    with session_scope(runtime.sessions) as session:
        counts = repository.image_state_counts(session=session)
        posts = repository.count_posts(session=session)
        detections = repository.count_detections(session=session)
        sources = repository.list_sources(session=session)
        unhealthy_after = settings().unhealthy_after_failures
        table = Table("source", "kind", "last collected", "status", "failures", "last error")
        for source in sources:
            health = source.last_status or "never run"
            if source.consecutive_failures >= unhealthy_after:
                health = "[red]unhealthy[/red]"
            table.add_row(
                source.name,
                source.kind,
                f"{source.last_collected_at:%Y-%m-%d %H:%M}"
                if source.last_collected_at
                else "never",
                health,
                str(source.consecutive_failures),
                (source.last_error or "")[:120],
            )
        failures = [
            (image.url, image.error) for image in repository.failed_images(session=session, limit=5)
        ]
        waiting = repository.count_images_waiting_to_retry(session=session)
        retrying = [
            _retry_line(image.url, image.error, image.attempts, image.queued_at)
            for image in repository.images_waiting_to_retry(session=session, limit=5)
        ]
    console.print(
        f"posts: {posts}   detections: {detections}   images: "
        + ", ".join(f"{state} {count}" for state, count in counts.items())
    )
    if sources:
        console.print(table)
    if waiting:
        console.print(f"waiting to retry: {waiting} images (a passing failure; tried again later)")
    for line in retrying:
        console.print(line, highlight=False)
    for url, error in failures:
        console.print(f"[dim]failed image[/dim] {url[:100]}: {error}")


def _retry_line(url: str, error: str | None, attempts: int, last_attempt: datetime) -> str:
    """One image waiting to retry: its attempts, when the next one comes, the last error."""
    from monitor.pipeline import retry_delay_seconds

    current = settings()
    if current.embedded:
        next_attempt = "next attempt: `monitor requeue` or the next collect"
    else:
        moment = last_attempt if last_attempt.tzinfo else last_attempt.replace(tzinfo=UTC)
        due = moment + timedelta(seconds=retry_delay_seconds(attempts))
        next_attempt = f"next attempt about {due:%Y-%m-%d %H:%M:%S} UTC"
    return (
        f"[dim]retrying[/dim] {url[:100]}: attempt {attempts} of {current.task_max_retries}, "
        f"{next_attempt}; last error: {error}"
    )


def worker(
    queues: Annotated[
        str, typer.Option(help="Comma-separated queues: collect, fetch, classify.")
    ] = "collect,fetch,classify",
    concurrency: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 2,
    beat: Annotated[bool, typer.Option(help="Also run the beat scheduler in this worker.")] = False,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "info",
) -> None:
    """Start a Celery worker (the same as `celery -A workers.celery_app worker`)."""
    _require_broker()
    arguments = [
        "worker",
        "--queues",
        queues,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        loglevel,
    ]
    if beat:
        arguments.append("--beat")
    _exec_celery(arguments)


def beat(loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "info") -> None:
    """Start celery beat: it queues due scheduled collections and re-queues lost work."""
    _require_broker()
    _exec_celery(["beat", "--loglevel", loglevel])


def _require_broker() -> None:
    if settings().broker_url is None:
        raise ConfigurationError(
            "workers need a broker: set MONITOR_BROKER_URL=redis://HOST:6379/0 "
            "(without one, `monitor collect` does the work in-process)"
        )


def _exec_celery(arguments: list[str]) -> None:
    """Replace this process with Celery, so signals reach it directly."""
    command: list[Any] = [sys.executable, "-m", "celery", "-A", "workers.celery_app", *arguments]
    os.execv(sys.executable, command)


def register(app: typer.Typer) -> None:
    """Add these commands to the main app."""
    app.add_typer(db_app, name="db")
    app.command()(collect)
    app.command()(requeue)
    app.command()(status)
    app.command()(worker)
    app.command()(beat)
