"""``monitor demo``: the quick-start job on the embedded default."""

from __future__ import annotations

import typer

from monitor.cli.common import console, services, settings
from monitor.exceptions import ConfigurationError


def demo() -> None:
    """Render a sample, train a small model, collect, classify, store, print and write a report."""
    from monitor.demo import run_demo

    current = settings()
    if not current.embedded:
        raise ConfigurationError(
            "the demo runs on the embedded default: unset MONITOR_BROKER_URL (and use the default "
            "SQLite database) or run `monitor collect` against your own sources"
        )
    console.print(f"[bold]monitor demo[/bold] in {current.home}")
    from monitor.cli.model_commands import training_progress
    from monitor.inference.training import TrainingProgress

    with training_progress() as progress:
        task = progress.add_task("demo model (skipped if trained)", total=None, detail="")

        def show(step: TrainingProgress) -> None:
            epoch = f" epoch {step.epoch}/{step.epochs}" if step.epoch else ""
            progress.update(
                task,
                description=f"{step.stage}{epoch}",
                completed=step.completed,
                total=step.total or None,
                detail=step.message,
            )

        result = run_demo(services=services(), progress=show)
    console.print(
        f"model: {result.model_dir} ({'trained now' if result.trained else 'already trained'})\n"
        f"collected: {result.collect.posts_seen} posts seen, {result.collect.new_posts} new, "
        f"{result.collect.new_images} new images; classified {result.classified} images, "
        f"{result.detections} detections"
    )
    if result.top_brand is None:
        console.print("no detections stored")
        return
    from monitor.cli.report_commands import ReportFormat, report

    console.print(f"\n$ monitor report --brand {result.top_brand}\n")
    report(
        brand=result.top_brand,
        since=None,
        until=None,
        output_format=ReportFormat.table,
        top=5,
        plot=None,
    )
    if result.html_report is not None:
        console.print(f"\nhtml report (photos with their boxes): {result.html_report}")


def register(app: typer.Typer) -> None:
    """Add the demo command to the main app."""
    app.command()(demo)
