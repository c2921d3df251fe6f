"""The HTML brand report from the store: the report's figures, the chart's data, the gallery."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from monitor.analytics.gallery import build_gallery
from monitor.analytics.html_report import render_report_html
from monitor.analytics.report import BrandReport
from monitor.analytics.trend import mentions_trend


def build_html_report(
    *,
    session: Session,
    report: BrandReport,
    generated_at: datetime,
    gallery_size: int = 24,
    seed: int = 0,
    model_thresholds: Mapping[str, float] | None = None,
) -> str:
    """The page for ``report`` (from ``build_report``), with its chart and photos read here."""
    brand, since, until = report.brand, report.since, report.until
    return render_report_html(
        report=report,
        trend=mentions_trend(session=session, brand=brand, since=since, until=until),
        gallery=build_gallery(
            session=session,
            brand=brand,
            since=since,
            until=until,
            size=gallery_size,
            seed=seed,
            model_thresholds=model_thresholds,
        ),
        generated_at=generated_at.astimezone(UTC),
    )


__all__ = ["build_html_report"]
