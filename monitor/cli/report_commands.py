"""``monitor report``: one brand's detections, posts, days, accounts, sources and confidence."""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.cli.common import checked_database, console, parse_day, settings

if TYPE_CHECKING:
    from monitor.analytics.report import BrandReport


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def report(
    brand: Annotated[str, typer.Option("--brand", help="The brand, as the model names it.")],
    since: Annotated[str | None, typer.Option(help="First day, e.g. 2026-11-01.")] = None,
    until: Annotated[str | None, typer.Option(help="Last day (inclusive).")] = None,
    output_format: Annotated[
        ReportFormat, typer.Option("--format", help="table, json or csv.")
    ] = ReportFormat.table,
    top: Annotated[int, typer.Option(help="Rows in the top-N lists.", min=1)] = 10,
    plot: Annotated[Path | None, typer.Option(help="Also draw the report into this PNG.")] = None,
) -> None:
    """Report on one brand: mentions per day, top accounts, sources, confidence, best posts."""
    from monitor.analytics.report import build_report
    from monitor.exceptions import UnknownBrandError
    from monitor.storage.db import read_scope

    first, last = parse_day(since, flag="--since"), parse_day(until, flag="--until")
    with read_scope(checked_database()) as session:
        try:
            result = build_report(session=session, brand=brand, since=first, until=last, top=top)
        except UnknownBrandError:
            # Not in the database: a brand the model knows but has not seen yet gets a report of
            # zeros. The model's labels are read only here, to keep the common case fast.
            result = build_report(
                session=session,
                brand=brand,
                since=first,
                until=last,
                top=top,
                model_labels=_model_labels(),
            )
    if plot is not None:
        from monitor.analytics.plot import plot_report

        plot_report(result, plot)
    if output_format is ReportFormat.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    elif output_format is ReportFormat.csv:
        _write_csv(result)
    else:
        _print_table(result)


def _model_labels() -> list[str]:
    """Brands the configured model knows, read from its metadata without loading TensorFlow."""
    from monitor.exceptions import ModelError
    from monitor.inference.model_dir import read_metadata

    try:
        return list(read_metadata(settings().default_model_dir).labels)
    except ModelError:
        return []  # no model yet: the brands in the database are the known ones


def _write_csv(result: BrandReport) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(["brand", "day", "detections", "posts"])
    for row in result.by_day:
        writer.writerow([result.brand, row["day"], row["detections"], row["posts"]])


def _print_table(result: BrandReport) -> None:
    window = f"{result.since or 'start'} .. {result.until or 'now'}"
    share = f"{result.image_only_share:.0%}" if result.image_only_share is not None else "-"
    console.print(
        f"[bold]{result.brand}[/bold]  {window}\n"
        f"detections: {result.detections}   posts: {result.posts}   "
        f"image-only posts (text never names the brand): {result.image_only_posts} ({share})"
    )
    if result.posts == 0:
        console.print("no detections in this window")
        return
    _table("per day", ["day", "detections", "posts"], result.by_day)
    _table(
        "top accounts", ["author", "platform", "posts", "followers", "reach"], result.top_authors
    )
    _table("sources", ["source", "posts"], result.sources)
    _table("platforms", ["platform", "posts"], result.platforms)
    _table("probability", ["from", "to", "detections"], result.probability_histogram)
    _table("most confident posts", ["probability", "author", "posted_at", "url"], result.top_posts)
    _table("also shown by the same accounts", ["brand", "accounts"], result.co_endorsed_brands)


def _table(title: str, columns: list[str], rows: list[dict[str, object]]) -> None:
    """A plain aligned table: a whole history has hundreds of days, which rich renders slowly."""
    if not rows:
        return
    cells = [[("-" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [
        max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)
    ]
    lines = [
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in [columns, ["-" * width for width in widths], *cells]
    ]
    console.print(f"[bold]{title}[/bold]")
    console.file.write("\n".join(lines) + "\n")


def register(app: typer.Typer) -> None:
    """Add the report command to the main app."""
    app.command()(report)
