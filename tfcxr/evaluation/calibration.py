"""Calibration: do predicted probabilities match observed frequencies?

AUC only measures ranking; a model distilled or quantized for a phone can rank well yet be
over- or under-confident, which matters once a threshold or a displayed probability is used.
Per label (over unmasked rows):
- reliability curve: predictions grouped in bins, mean predicted probability vs fraction of
  positives. ``"uniform"`` bins split [0, 1] into equal widths; ``"quantile"`` bins hold about
  equal numbers of films (better for rare findings, whose probabilities crowd near 0);
- expected calibration error (ECE): the film-weighted mean |fraction positive - mean predicted|
  over non-empty bins;
- Brier score: mean squared error of the probability against the 0/1 label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tfcxr.errors import TfcxrError
from tfcxr.evaluation.inputs import check_arrays

STRATEGIES = ("uniform", "quantile")


@dataclass
class ReliabilityCurve:
    bin_edges: np.ndarray  # [K + 1]
    mean_predicted: np.ndarray  # [K], NaN for an empty bin
    fraction_positive: np.ndarray  # [K], NaN for an empty bin
    counts: np.ndarray  # [K]


@dataclass
class LabelCalibration:
    ece: float
    brier: float
    curve: ReliabilityCurve


def reliability_curve(y, p, n_bins: int = 10, strategy: str = "uniform") -> ReliabilityCurve:
    """Bins are [edge_k, edge_k+1), the last one closed; quantile edges merge where tied."""
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    if strategy not in STRATEGIES:
        raise TfcxrError(f"calibration bins must be one of {STRATEGIES}, got {strategy!r}")
    if n_bins < 1:
        raise TfcxrError(f"calibration needs at least one bin, got {n_bins}")
    if strategy == "uniform" or len(p) == 0:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1)))
        edges = edges if len(edges) > 1 else np.array([edges[0], edges[0]])
    k = len(edges) - 1
    bins = np.clip(np.searchsorted(edges[1:-1], p, side="right"), 0, k - 1)
    counts = np.bincount(bins, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_predicted = np.bincount(bins, weights=p, minlength=k) / counts
        fraction_positive = np.bincount(bins, weights=y, minlength=k) / counts
    return ReliabilityCurve(edges, mean_predicted, fraction_positive, counts)


def expected_calibration_error(y, p, n_bins: int = 10, strategy: str = "uniform") -> float:
    curve = reliability_curve(y, p, n_bins, strategy)
    filled = curve.counts > 0
    if not filled.any():
        return float("nan")
    gaps = np.abs(curve.fraction_positive[filled] - curve.mean_predicted[filled])
    return float((curve.counts[filled] * gaps).sum() / curve.counts.sum())


def brier_score(y, p) -> float:
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def calibration_by_label(labels, probs, mask, label_names: Sequence[str], n_bins: int = 10,
                         strategy: str = "uniform") -> dict[str, LabelCalibration]:
    arrays = check_arrays(labels, probs, mask, label_names)
    out = {}
    for j, name in enumerate(arrays.label_names):
        rows = arrays.mask[:, j]
        y, p = arrays.labels[rows, j], arrays.probs[rows, j]
        out[name] = LabelCalibration(expected_calibration_error(y, p, n_bins, strategy),
                                     brier_score(y, p), reliability_curve(y, p, n_bins, strategy))
    return out
