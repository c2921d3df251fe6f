"""``monitor report``: one brand's detections, posts, days, accounts, sources and confidence."""

from __future__ import annotations

import csv
import io
import json
import sys
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

from monitor.cli.common import checked_database, parse_day, services, settings
from monitor.exceptions import ConfigurationError

if TYPE_CHECKING:
    from monitor.analytics.report import BrandReport
    from monitor.inference.model_dir import ModelMetadata


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    html = "html"


def report(
    brand: Annotated[str, typer.Option("--brand", help="The brand, as the model names it.")],
    since: Annotated[str | None, typer.Option(help="First day, e.g. 2026-11-01.")] = None,
    until: Annotated[str | None, typer.Option(help="Last day (inclusive).")] = None,
    output_format: Annotated[
        ReportFormat, typer.Option("--format", help="table, json, csv or html.")
    ] = ReportFormat.table,
    out: Annotated[
        Path | None, typer.Option(help="Write the report into this file instead of printing it.")
    ] = None,
    top: Annotated[int, typer.Option(help="Rows in the top-N lists.", min=1)] = 10,
    gallery: Annotated[
        int, typer.Option(help="html: photos in each gallery section.", min=0, max=500)
    ] = 24,
    seed: Annotated[int, typer.Option(help="html: seed of the gallery's random sample.")] = 0,
    plot: Annotated[Path | None, typer.Option(help="Also draw the report into this PNG.")] = None,
) -> None:
    """Report on one brand: mentions per day, top accounts, sources, confidence, best posts.

    ``--format html --out report.html`` writes one self-contained page with the chart, the
    accounts and a gallery of the photos with their detection boxes.
    """
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
            model = _model_metadata()
            result = build_report(
                session=session,
                brand=brand,
                since=first,
                until=last,
                top=top,
                model_labels=list(model.labels) if model else [],
            )
    page = (
        _html_page(result, gallery=gallery, seed=seed)
        if output_format is ReportFormat.html
        else None
    )
    if plot is not None:
        from monitor.analytics.plot import plot_report

        plot_report(result, plot)
    text = page if page is not None else render_text(result, output_format)
    if out is None:
        sys.stdout.write(text)
    else:
        _write_file(out, text)


def _html_page(result: BrandReport, *, gallery: int, seed: int) -> str:
    """The self-contained HTML page: the report's figures plus the photos of its posts."""
    from monitor.analytics.html_export import build_html_report
    from monitor.storage.db import session_scope

    runtime = services()
    model = _model_metadata()
    with session_scope(runtime.sessions) as session:
        return build_html_report(
            session=session,
            report=result,
            generated_at=runtime.clock(),
            gallery_size=gallery,
            seed=seed,
            model_thresholds={model.version: model.no_logo_threshold} if model else {},
        )


def render_text(result: BrandReport, output_format: ReportFormat) -> str:
    """The report as text in a non-html format."""
    if output_format is ReportFormat.json:
        return json.dumps(result.to_dict(), indent=2, default=_json_number) + "\n"
    if output_format is ReportFormat.csv:
        return _csv_text(result)
    buffer = io.StringIO()
    _print_table(result, buffer)
    return buffer.getvalue()


def _json_number(value: object) -> int | float:
    """PostgreSQL sums BIGINT columns (followers into reach) as NUMERIC, which arrives as Decimal."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _write_file(path: Path, text: str) -> None:
    """Write the whole report, or nothing: a half-written file never replaces a good one."""
    partial = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ConfigurationError(f"--out {path}: cannot write the file: {exc}") from exc


def _model_metadata() -> ModelMetadata | None:
    """The configured model's metadata (its labels, version, threshold), without TensorFlow."""
    from monitor.exceptions import ModelError
    from monitor.inference.model_dir import read_metadata

    try:
        return read_metadata(settings().default_model_dir)
    except ModelError:
        return None  # no model yet: the brands in the database are the known ones


def _csv_text(result: BrandReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["brand", "day", "detections", "posts"])
    for row in result.by_day:
        writer.writerow([result.brand, row["day"], row["detections"], row["posts"]])
    return buffer.getvalue()


def _print_table(result: BrandReport, stream: IO[str]) -> None:
    window = f"{result.since or 'start'} .. {result.until or 'now'}"
    share = f"{result.image_only_share:.0%}" if result.image_only_share is not None else "-"
    stream.write(
        f"{result.brand}  {window}\n"
        f"detections: {result.detections}   posts: {result.posts}   "
        f"image-only posts (text never names the brand): {result.image_only_posts} ({share})\n"
    )
    if result.posts == 0:
        stream.write("no detections in this window\n")
        return
    _table(stream, "per day", ["day", "detections", "posts"], result.by_day)
    _table(
        stream,
        "top accounts",
        ["author", "platform", "posts", "followers", "reach"],
        result.top_authors,
    )
    _table(stream, "sources", ["source", "posts"], result.sources)
    _table(stream, "platforms", ["platform", "posts"], result.platforms)
    _table(stream, "probability", ["from", "to", "detections"], result.probability_histogram)
    _table(
        stream,
        "most confident posts",
        ["probability", "author", "posted_at", "url"],
        result.top_posts,
    )
    _table(
        stream, "also shown by the same accounts", ["brand", "accounts"], result.co_endorsed_brands
    )


def _table(stream: IO[str], title: str, columns: list[str], rows: list[dict[str, object]]) -> None:
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
    stream.write(title + "\n" + "\n".join(lines) + "\n")


def register(app: typer.Typer) -> None:
    """Add the report command to the main app."""
    app.command()(report)
