"""Grad-CAM pictures: a heat map blended over the grey film, captioned, saved as PNG.

The heat map (any resolution, values in [0, 1]) is resized to the film and coloured with a
matplotlib colour map (``jet`` by default, ``inferno`` for a perceptually uniform one); it is
blended with a weight proportional to the heat, so regions without evidence show the film
untouched instead of a blue wash. ``save_figure`` draws one panel per heat map, after the plain
film, so a teacher and a student explained on the same film sit side by side with their
probabilities. Drawn on a bare ``Figure`` with the Agg canvas (no display, no global backend,
no leaked figures) and written atomically, like ``tfcxr.evaluation.plots``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tfcxr.errors import TfcxrError
from tfcxr.io import atomic_path

PANEL_INCHES = 3.2
DPI = 100
DEFAULT_ALPHA = 0.6


@dataclass(frozen=True)
class Panel:
    """One heat map to draw: whose it is (``title``), for which label, with what probability."""

    title: str  # e.g. "teacher: densenet161"
    heatmap: np.ndarray  # [h, w] in [0, 1]
    label: str
    probability: float | None = None

    @property
    def caption(self) -> str:
        if self.probability is None:
            return f"{self.title}\n{self.label}"
        return f"{self.title}\n{self.label}: p = {self.probability:.2f}"


def overlay(film: np.ndarray, heatmap: np.ndarray, *, cmap: str = "jet",
            alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """RGB float32 [H, W, 3] in [0, 1]: ``heatmap`` coloured and blended over grey ``film``.

    film: [H, W] (or [H, W, 1]) in [0, 1], the canonical image of ``tfcxr.data.images``.
    heatmap: [h, w] in [0, 1], resized bilinearly to the film. Each pixel is
    ``(1 - a) * film + a * colour(heat)`` with ``a = alpha * heat``.
    """
    film = _grey(film)
    heat = np.clip(np.asarray(heatmap, np.float32), 0.0, 1.0)
    if heat.ndim != 2:
        raise TfcxrError(f"a heat map must be 2-D [h, w]; got shape {heat.shape}")
    heat = cv2.resize(heat, (film.shape[1], film.shape[0]), interpolation=cv2.INTER_LINEAR)
    colour = matplotlib.colormaps[cmap](heat)[..., :3].astype(np.float32)
    weight = (alpha * np.clip(heat, 0.0, 1.0))[..., None]
    return np.clip((1.0 - weight) * film[..., None] + weight * colour, 0.0, 1.0)


def save_figure(path: str | Path, film: np.ndarray, panels: Sequence[Panel], *,
                title: str = "", cmap: str = "jet", alpha: float = DEFAULT_ALPHA,
                show_film: bool = True) -> Path:
    """Save the film (if ``show_film``) and one overlay per panel side by side as a PNG."""
    if not panels:
        raise TfcxrError("nothing to draw: no heat maps given")
    film = _grey(film)
    columns = len(panels) + int(show_film)
    figure = Figure(figsize=(PANEL_INCHES * columns, PANEL_INCHES + 0.9 + 0.3 * bool(title)))
    FigureCanvasAgg(figure)
    axes = list(figure.subplots(1, columns, squeeze=False).ravel())
    if show_film:
        axes.pop(0).imshow(film, cmap="gray", vmin=0.0, vmax=1.0)
        figure.axes[0].set_title("film", fontsize=9)
    for ax, panel in zip(axes, panels):
        ax.imshow(overlay(film, panel.heatmap, cmap=cmap, alpha=alpha))
        ax.set_title(panel.caption, fontsize=9)
    for ax in figure.axes:
        ax.set_axis_off()
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    return path


def save_overlay(path: str | Path, film: np.ndarray, heatmap: np.ndarray, label: str,
                 probability: float | None = None, *, title: str = "Grad-CAM",
                 **kwargs) -> Path:
    """Save one captioned overlay (film beside it unless ``show_film=False``) as a PNG."""
    return save_figure(path, film, [Panel(title, heatmap, label, probability)], **kwargs)


def _grey(film: np.ndarray) -> np.ndarray:
    film = np.asarray(film, np.float32)
    if film.ndim == 3 and film.shape[-1] == 1:
        film = film[..., 0]
    if film.ndim != 2:
        raise TfcxrError(f"a film must be one grey channel [H, W]; got shape {film.shape}")
    return np.clip(film, 0.0, 1.0)
