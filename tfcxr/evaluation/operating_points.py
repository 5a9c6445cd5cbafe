"""Per-label operating points: a probability threshold turns a score into a yes/no finding.

``youden_thresholds`` picks, for each label, the threshold maximizing Youden's J
(sensitivity + specificity - 1) over the unmasked rows; a film is called positive when its
probability is >= the threshold. Among tied J it keeps the highest threshold (fewest false
alarms). A label without both classes has no ROC curve: its threshold falls back to 0.5 and
``method`` says ``"default_no_positives"`` (the usual case, a rare finding absent from the
split; a split with no negatives is flagged the same way), so exporters and reports can warn.
Sensitivity or specificity that the data cannot measure is NaN.

Choose thresholds on a validation split, then measure them with ``metrics_at_thresholds`` on
the test split: thresholds chosen on the test data report optimistic sensitivity/specificity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import roc_curve

from tfcxr.errors import TfcxrError
from tfcxr.evaluation.inputs import check_arrays

DEFAULT_THRESHOLD = 0.5


def _rate(hits: int, total: int) -> float:
    return hits / total if total else float("nan")


def youden_thresholds(labels, probs, mask, label_names: Sequence[str]) -> dict[str, dict]:
    """``{label: {"threshold", "sensitivity", "specificity", "positives", "negatives", "method"}}``.

    ``method`` is ``"youden_j"`` or ``"default_no_positives"`` (fallback threshold 0.5).
    """
    arrays = check_arrays(labels, probs, mask, label_names)
    out = {}
    for j, name in enumerate(arrays.label_names):
        rows = arrays.mask[:, j]
        y, p = arrays.labels[rows, j] > 0.5, arrays.probs[rows, j]
        positives, negatives = int(y.sum()), int((~y).sum())
        if positives and negatives:
            fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
            best = 1 + int(np.argmax((tpr - fpr)[1:]))  # index 0 is sklearn's +inf threshold
            threshold, sensitivity, specificity = thresholds[best], tpr[best], 1 - fpr[best]
            method = "youden_j"
        else:
            threshold = DEFAULT_THRESHOLD
            sensitivity = _rate(int((p[y] >= threshold).sum()), positives)
            specificity = _rate(int((p[~y] < threshold).sum()), negatives)
            method = "default_no_positives"
        out[name] = {"threshold": float(threshold), "sensitivity": float(sensitivity),
                     "specificity": float(specificity), "positives": positives,
                     "negatives": negatives, "method": method}
    return out


def metrics_at_thresholds(labels, probs, mask,
                          thresholds: Mapping[str, float | Mapping]) -> dict[str, dict]:
    """Confusion counts, sensitivity, specificity, PPV, NPV and F1 of each label at its threshold.

    ``thresholds``: label -> threshold, or the ``youden_thresholds`` dict, one entry per label
    column IN COLUMN ORDER (its keys name the columns). Undefined rates are NaN.
    """
    names = list(thresholds)
    arrays = check_arrays(labels, probs, mask, names)
    out = {}
    for j, name in enumerate(names):
        entry = thresholds[name]
        threshold = float(entry["threshold"] if isinstance(entry, Mapping) else entry)
        if not 0 <= threshold <= 1:
            raise TfcxrError(f"threshold for {name!r} must be in [0, 1], got {threshold}")
        rows = arrays.mask[:, j]
        y, called = arrays.labels[rows, j] > 0.5, arrays.probs[rows, j] >= threshold
        tp, fp = int((y & called).sum()), int((~y & called).sum())
        fn, tn = int((y & ~called).sum()), int((~y & ~called).sum())
        out[name] = {"threshold": threshold, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
                     "positives": tp + fn, "negatives": tn + fp,
                     "sensitivity": _rate(tp, tp + fn), "specificity": _rate(tn, tn + fp),
                     "ppv": _rate(tp, tp + fp), "npv": _rate(tn, tn + fn),
                     "f1": _rate(2 * tp, 2 * tp + fp + fn)}
    return out
