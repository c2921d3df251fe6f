"""Pictures written into model directories and reports: training curves, confusion matrices.

Matplotlib's non-interactive backend is used so plotting works on servers without a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def new_figure(*, width: float, height: float) -> tuple[Any, Any]:
    """A figure and its single axes, drawn off-screen."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    return figure, figure.add_subplot(1, 1, 1)


def save_figure(figure: Any, path: Path) -> None:
    """Write a figure as PNG."""
    figure.tight_layout()
    figure.savefig(path, format="png")


def plot_training_curves(history: Mapping[str, Sequence[float]], path: Path) -> None:
    """Loss and accuracy per epoch, training and validation, head and fine-tuning in one line."""
    figure, axes = new_figure(width=7, height=4)
    for name, values in sorted(history.items()):
        if values:
            axes.plot(range(1, len(values) + 1), values, label=name, marker=".")
    axes.set_xlabel("epoch")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    axes.set_title("training")
    save_figure(figure, path)


def plot_confusion_matrix(matrix: np.ndarray, names: Sequence[str], path: Path) -> None:
    """Rows are true answers, columns given answers; cell colour is the share of the row."""
    size = max(5.0, 0.32 * len(names) + 2)
    figure, axes = new_figure(width=size, height=size)
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(names)), names, rotation=90, fontsize="x-small")
    axes.set_yticks(range(len(names)), names, fontsize="x-small")
    axes.set_xlabel("answer")
    axes.set_ylabel("truth")
    for row, column in zip(*np.nonzero(matrix), strict=True):
        colour = "white" if shares[row, column] > 0.5 else "black"
        axes.text(
            column,
            row,
            str(matrix[row, column]),
            ha="center",
            va="center",
            fontsize="xx-small",
            color=colour,
        )
    save_figure(figure, path)
