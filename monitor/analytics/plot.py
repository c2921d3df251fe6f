"""Draw a brand report: mentions per day and the accounts that show the brand most."""

from __future__ import annotations

from pathlib import Path

from monitor.analytics.report import BrandReport
from monitor.exceptions import ConfigurationError


def plot_report(report: BrandReport, path: Path) -> Path:
    """Write a two-panel PNG for ``report`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if path.suffix.lower() != ".png":
        raise ConfigurationError(f"--plot {path}: the file name must end in .png")
    figure, (days_axis, authors_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    days = [row["day"] for row in report.by_day]
    days_axis.bar(days, [row["posts"] for row in report.by_day], color="#3b6fb6")
    days_axis.set_title(f"{report.brand}: posts showing the brand per day")
    days_axis.tick_params(axis="x", labelrotation=60, labelsize=7)
    authors = list(reversed(report.top_authors))
    authors_axis.barh(
        [str(row["author"]) for row in authors], [row["posts"] for row in authors], color="#d9822b"
    )
    authors_axis.set_title("top accounts (posts)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        figure.savefig(path, dpi=110)
    except OSError as exc:
        raise ConfigurationError(f"--plot {path}: cannot write the file: {exc}") from exc
    finally:
        plt.close(figure)
    return path
