"""Patient-level bootstrap confidence intervals for per-label and mean ROC-AUC.

Films of one patient are correlated (same anatomy, same disease, often days apart), so
resampling films treats them as independent evidence and gives intervals that are too narrow.
Each resample here draws PATIENTS with replacement, and every film of a drawn patient comes
along as many times as the patient was drawn. A resample is thus a vector of integer image
weights, and the AUC of a weighted sample is computed from ranks for all resamples at once
(scores sorted once per label, then cumulative sums), so 1000 resamples x 14 labels x 1000
images take about a second.

Rules:
- a label whose resample holds one class only has no AUC there: that resample is skipped for
  that label (``Interval.n_valid`` counts the others);
- the mean AUC averages the labels with an AUC on the full data (as ``tfcxr.metrics`` does);
  a resample counts for the mean only if every one of those labels has an AUC in it, so each
  replicate averages the same labels as the point estimate. The same holds for label subsets
  such as ``CHEXPERT_COMPETITION_LABELS``, reported when all of its labels are evaluated;
- intervals are the 2.5th and 97.5th percentiles of the valid replicates (NaN when none).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tfcxr.data.labels import CHEXPERT_COMPETITION_LABELS
from tfcxr.errors import TfcxrError
from tfcxr.evaluation.inputs import check_arrays, check_patient_ids

CONFIDENCE = 0.95
# Image weights held in memory at once: resamples are processed in chunks of this many cells.
CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    n_valid: int  # resamples that had a value


@dataclass
class BootstrapResult:
    label_names: tuple[str, ...]
    per_label: dict[str, Interval]
    mean: Interval
    subsets: dict[str, Interval] = field(default_factory=dict)
    n_boot: int = 0
    seed: int = 0


def default_subsets(label_names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The CheXpert competition five, when every one of them is among ``label_names``."""
    if set(CHEXPERT_COMPETITION_LABELS) <= set(label_names):
        return {"chexpert_competition": tuple(CHEXPERT_COMPETITION_LABELS)}
    return {}


def resample_weights(patient_codes: np.ndarray, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Yield ``[b, N]`` image weights, chunks of the ``n_boot`` patient resamples in order.

    ``patient_codes`` (0..P-1 per image, from ``check_patient_ids``): each resample draws P
    patients with replacement; an image's weight is how many times its patient was drawn.
    The same codes, ``n_boot`` and ``seed`` always give the same resamples.
    """
    n_patients = int(patient_codes.max()) + 1 if len(patient_codes) else 0
    rng = np.random.default_rng(seed)
    chunk = max(1, CHUNK_CELLS // max(len(patient_codes), n_patients, 1))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        draws = rng.integers(0, n_patients, size=(b, n_patients))
        offsets = (draws + n_patients * np.arange(b)[:, None]).ravel()
        counts = np.bincount(offsets, minlength=b * n_patients).reshape(b, n_patients)
        yield counts[:, patient_codes].astype(np.float64)


def weighted_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC of one label under each row of ``weights`` ([B, n] -> [B]); NaN if one class.

    Integer weights give exactly the AUC of the sample with each image repeated that many
    times; tied scores count one half (as in ``sklearn.metrics.roc_auc_score``).
    """
    weights = np.atleast_2d(weights)
    if len(scores) == 0:
        return np.full(len(weights), np.nan)
    order = np.argsort(scores, kind="stable")
    sorted_scores, positive = scores[order], labels[order] > 0.5
    w = weights[:, order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    pos = np.add.reduceat(np.where(positive, w, 0.0), starts, axis=1)
    neg = np.add.reduceat(np.where(positive, 0.0, w), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each score
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos * (below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auc


def point_and_replicates(labels: np.ndarray, score_sets: Sequence[np.ndarray], mask: np.ndarray,
                         patient_codes: np.ndarray, n_boot: int, seed: int):
    """AUCs of each score set on the data ``[M, C]`` and on each resample ``[M, n_boot, C]``.

    Every score set sees the same resamples, which is what makes paired comparison paired.
    """
    n_labels = labels.shape[1]
    point = np.full((len(score_sets), n_labels), np.nan)
    replicates = np.full((len(score_sets), n_boot, n_labels), np.nan)
    rows = [mask[:, j] for j in range(n_labels)]
    for j in range(n_labels):
        for m, scores in enumerate(score_sets):
            point[m, j] = weighted_auc(labels[rows[j], j], scores[rows[j], j],
                                       np.ones((1, int(rows[j].sum()))))[0]
    start = 0
    for weights in resample_weights(patient_codes, n_boot, seed):
        stop = start + len(weights)
        for j in range(n_labels):
            if np.isnan(point[:, j]).all():
                continue  # one class on the full data: no resample can have two
            w = weights[:, rows[j]]
            for m, scores in enumerate(score_sets):
                replicates[m, start:stop, j] = weighted_auc(labels[rows[j], j],
                                                            scores[rows[j], j], w)
        start = stop
    return point, replicates


def percentile_interval(estimate: float, replicates: np.ndarray) -> Interval:
    valid = replicates[~np.isnan(replicates)]
    if np.isnan(estimate) or len(valid) == 0:
        return Interval(float(estimate), float("nan"), float("nan"), len(valid))
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(valid, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high), len(valid))


def subset_mean(point: np.ndarray, replicates: np.ndarray, columns: Sequence[int]):
    """Mean over the ``columns`` with a point AUC: (estimate, [..., B] replicates, NaN invalid)."""
    defined = [j for j in columns if not np.isnan(point[j])]
    if not defined:
        return float("nan"), np.full(replicates.shape[:-1], np.nan)
    return float(point[defined].mean()), replicates[..., defined].mean(axis=-1)


def resolve_subsets(label_names: Sequence[str],
                    subsets: Mapping[str, Sequence[str]] | None) -> dict[str, list[int]]:
    """Subset name -> column indices; None means ``default_subsets``."""
    subsets = default_subsets(label_names) if subsets is None else subsets
    resolved = {}
    for name, members in subsets.items():
        missing = [m for m in members if m not in label_names]
        if missing:
            raise TfcxrError(f"label subset {name!r} names labels not evaluated: {missing}")
        resolved[name] = [list(label_names).index(m) for m in members]
    return resolved


def summarize(point: np.ndarray, replicates: np.ndarray, label_names: Sequence[str],
              subsets: Mapping[str, Sequence[int]], n_boot: int, seed: int) -> BootstrapResult:
    """One score set's ``[C]`` point AUCs and ``[B, C]`` replicates -> intervals."""
    per_label = {name: percentile_interval(point[j], replicates[:, j])
                 for j, name in enumerate(label_names)}
    mean = percentile_interval(*subset_mean(point, replicates, range(len(label_names))))
    return BootstrapResult(
        tuple(label_names), per_label, mean,
        {name: percentile_interval(*subset_mean(point, replicates, columns))
         for name, columns in subsets.items()},
        n_boot, seed)


def bootstrap_auc(labels, scores, mask, patient_ids, n_boot: int = 1000, seed: int = 0, *,
                  label_names: Sequence[str] | None = None,
                  subsets: Mapping[str, Sequence[str]] | None = None) -> BootstrapResult:
    """Per-label and mean ROC-AUC with patient-level 95% percentile bootstrap intervals.

    labels, scores, mask: [N, C] (mask None: every label counts); patient_ids: [N].
    ``subsets`` (name -> labels) adds the mean over those labels; None applies
    ``default_subsets`` (the CheXpert competition five when all are present).
    """
    if n_boot < 1:
        raise TfcxrError(f"n_boot must be at least 1, got {n_boot}")
    arrays = check_arrays(labels, scores, mask, label_names, probs_name="scores",
                          probabilities=False)
    codes = check_patient_ids(patient_ids, len(arrays.labels))
    point, replicates = point_and_replicates(arrays.labels, [arrays.probs], arrays.mask, codes,
                                             n_boot, seed)
    return summarize(point[0], replicates[0], arrays.label_names,
                     resolve_subsets(arrays.label_names, subsets), n_boot, seed)
