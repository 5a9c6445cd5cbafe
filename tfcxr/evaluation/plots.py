"""Report figures as PNG files: ROC curves and reliability diagrams, one panel per label.

Drawn on a bare ``Figure`` with the Agg canvas, never through ``pyplot``: no display is needed
(servers, CI, phones' build machines), no global backend is switched and no figure leaks.
Each panel takes one or more lines, so a single model and a comparison of several runs use
the same functions. Files are written atomically.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tfcxr.io import atomic_path

PANEL_INCHES = (3.2, 3.0)
DPI = 100
MAX_COLUMNS = 4


@dataclass(frozen=True)
class RocLine:
    legend: str  # e.g. "AUC 0.842 (0.801-0.880)"
    fpr: Sequence[float]
    tpr: Sequence[float]


@dataclass(frozen=True)
class ReliabilityLine:
    legend: str  # e.g. "ECE 0.031"
    mean_predicted: Sequence[float]
    fraction_positive: Sequence[float]


def _grid(n_panels: int, title: str) -> tuple[Figure, list]:
    columns = min(MAX_COLUMNS, max(n_panels, 1))
    rows = math.ceil(max(n_panels, 1) / columns)
    height = PANEL_INCHES[1] * rows + 0.7
    figure = Figure(figsize=(PANEL_INCHES[0] * columns, height))
    FigureCanvasAgg(figure)
    # Fixed margins: constrained layout would double the drawing time of a 14-panel grid.
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.45 / height, top=1 - 0.7 / height,
                           wspace=0.35, hspace=0.45)
    axes = list(figure.subplots(rows, columns, squeeze=False).ravel())
    for unused in axes[n_panels:]:
        unused.set_visible(False)
    if title:
        figure.suptitle(title, y=1 - 0.15 / height)
    return figure, axes


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    return path


def plot_roc(panels: Mapping[str, Sequence[RocLine]], path: str | Path, title: str = "") -> Path:
    """One ROC panel per label (chance diagonal dashed), legend per line; returns ``path``."""
    figure, axes = _grid(len(panels), title)
    for ax, (label, lines) in zip(axes, panels.items()):
        ax.plot([0, 1], [0, 1], linestyle="--", color="0.7", linewidth=0.8)
        for line in lines:
            ax.plot(line.fpr, line.tpr, linewidth=1.4, label=line.legend)
        _style(ax, label, "1 - specificity", "sensitivity")
    return _save(figure, path)


def plot_reliability(panels: Mapping[str, Sequence[ReliabilityLine]], path: str | Path,
                     title: str = "") -> Path:
    """One reliability diagram per label (perfect calibration dashed); returns ``path``."""
    figure, axes = _grid(len(panels), title)
    for ax, (label, lines) in zip(axes, panels.items()):
        ax.plot([0, 1], [0, 1], linestyle="--", color="0.7", linewidth=0.8)
        for line in lines:
            x, y = np.asarray(line.mean_predicted, float), np.asarray(line.fraction_positive, float)
            filled = ~(np.isnan(x) | np.isnan(y))
            ax.plot(x[filled], y[filled], marker="o", markersize=3, linewidth=1.2,
                    label=line.legend)
        _style(ax, label, "mean predicted probability", "fraction positive")
    return _save(figure, path)


def _style(ax, label: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(label, fontsize=10)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=7, frameon=False)
