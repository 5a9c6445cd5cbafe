"""Paired bootstrap comparison of models scored on the same images.

Two models evaluated on one test set are not independent samples: a patient that is easy for
one is usually easy for the other. Each resample here draws one set of patients and scores
every model on it (``point_and_replicates``), so the per-resample AUC difference keeps that
pairing and its interval is much tighter than comparing two separate intervals.

Deltas are ``other - reference`` (positive: ``other`` is better). The two-sided p-value is
``min(1, 2 * (1 + k) / (1 + n_valid))``, where ``k`` counts valid resamples whose delta lies
on the other side of zero from the observed delta (zero included): the +1 counts the observed
sample as one of the resamples, so p is never 0 and needs ``n_boot`` >= 2 / alpha resamples to
reach ``alpha``. Identical scores give delta 0 and p = 1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfcxr.errors import TfcxrError
from tfcxr.evaluation.bootstrap import (
    BootstrapResult, percentile_interval, point_and_replicates, resolve_subsets, subset_mean,
    summarize)
from tfcxr.evaluation.inputs import check_arrays, check_patient_ids
from tfcxr.evaluation.jsonable import jsonable
from tfcxr.evaluation.render import fmt, format_interval, format_p
from tfcxr.io import write_text_atomic


@dataclass(frozen=True)
class Delta:
    estimate: float  # other - reference, on the full data
    low: float
    high: float
    p_value: float
    n_valid: int


@dataclass
class PairedComparison:
    reference: str
    other: str
    per_label: dict[str, Delta]
    mean: Delta
    subsets: dict[str, Delta] = field(default_factory=dict)


@dataclass
class ComparisonTable:
    reference: str
    label_names: tuple[str, ...]
    runs: dict[str, BootstrapResult]  # name -> its own AUCs and intervals, in input order
    deltas: dict[str, PairedComparison]  # name -> versus the reference (every run but it)
    n_images: int
    n_patients: int
    n_boot: int
    seed: int

    def to_dict(self) -> dict:
        return jsonable(self)

    def to_markdown(self) -> str:
        """One row per run: mean AUC [95% CI], delta vs the reference [95% CI], p, subset means."""
        subsets = list(next(iter(self.runs.values())).subsets)
        head = ["Run", "Mean AUC (95% CI)", f"Δ vs {self.reference} (95% CI)", "p",
                *[f"{s} mean AUC" for s in subsets], *self.label_names]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name, result in self.runs.items():
            delta = self.deltas.get(name)
            cells = [name, format_interval(result.mean),
                     "reference" if delta is None else format_interval(delta.mean, signed=True),
                     "" if delta is None else format_p(delta.mean.p_value),
                     *[format_interval(result.subsets[s]) for s in subsets],
                     *[fmt(result.per_label[n].estimate) for n in self.label_names]]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append(f"\n{self.n_images} images, {self.n_patients} patients; paired "
                     f"patient-level bootstrap, {self.n_boot} resamples (seed {self.seed}).")
        return "\n".join(lines) + "\n"


def paired_delta(point_ref: float, point_other: float, reps_ref: np.ndarray,
                 reps_other: np.ndarray) -> Delta:
    """Delta, percentile interval and two-sided bootstrap p-value from paired replicates."""
    estimate = point_other - point_ref
    deltas = reps_other - reps_ref
    interval = percentile_interval(estimate, deltas)
    valid = deltas[~np.isnan(deltas)]
    if np.isnan(estimate) or len(valid) == 0:
        return Delta(estimate, interval.low, interval.high, float("nan"), len(valid))
    crossing = int((valid <= 0).sum() if estimate > 0 else (valid >= 0).sum())
    p = min(1.0, 2 * (1 + crossing) / (1 + len(valid)))
    return Delta(float(estimate), interval.low, interval.high, p, len(valid))


def compare_runs(labels, runs: Mapping[str, object], mask, patient_ids,
                 label_names: Sequence[str], reference: str | None = None, n_boot: int = 1000,
                 seed: int = 0, subsets: Mapping[str, Sequence[str]] | None = None,
                 ) -> ComparisonTable:
    """Bootstrap every named score set on the same patient resamples; deltas vs ``reference``.

    runs: name -> [N, C] probabilities on the SAME images in the same row order as ``labels``
    (align by image id first). ``reference`` defaults to the first run.
    """
    if len(runs) < 2:
        raise TfcxrError(f"comparison needs at least two runs, got {len(runs)}")
    if n_boot < 1:
        raise TfcxrError(f"n_boot must be at least 1, got {n_boot}")
    names = list(runs)
    reference = names[0] if reference is None else reference
    if reference not in runs:
        raise TfcxrError(f"reference run {reference!r} is not among the runs {names}")
    checked = [check_arrays(labels, runs[n], mask, label_names, probs_name=f"scores of {n!r}")
               for n in names]
    arrays = checked[0]
    codes = check_patient_ids(patient_ids, len(arrays.labels))
    columns = resolve_subsets(arrays.label_names, subsets)
    point, reps = point_and_replicates(arrays.labels, [a.probs for a in checked], arrays.mask,
                                       codes, n_boot, seed)
    results = {n: summarize(point[m], reps[m], arrays.label_names, columns, n_boot, seed)
               for m, n in enumerate(names)}
    r = names.index(reference)
    all_columns = range(len(arrays.label_names))
    deltas = {}
    for m, name in enumerate(names):
        if m == r:
            continue
        deltas[name] = PairedComparison(
            reference, name,
            {label: paired_delta(point[r, j], point[m, j], reps[r, :, j], reps[m, :, j])
             for j, label in enumerate(arrays.label_names)},
            _subset_delta(point, reps, r, m, all_columns),
            {s: _subset_delta(point, reps, r, m, cols) for s, cols in columns.items()})
    return ComparisonTable(reference, arrays.label_names, results, deltas, len(arrays.labels),
                           int(codes.max()) + 1 if len(codes) else 0, n_boot, seed)


def _subset_delta(point, reps, r: int, m: int, columns) -> Delta:
    ref_estimate, ref_reps = subset_mean(point[r], reps[r], columns)
    other_estimate, other_reps = subset_mean(point[m], reps[m], columns)
    return paired_delta(ref_estimate, other_estimate, ref_reps, other_reps)


def paired_bootstrap(labels, scores_a, scores_b, mask, patient_ids, label_names: Sequence[str],
                     n_boot: int = 1000, seed: int = 0, names: tuple[str, str] = ("A", "B"),
                     ) -> PairedComparison:
    """Delta AUC (B - A) per label, of the mean and of label subsets, with CI and p-value."""
    table = compare_runs(labels, {names[0]: scores_a, names[1]: scores_b}, mask, patient_ids,
                         label_names, reference=names[0], n_boot=n_boot, seed=seed)
    return table.deltas[names[1]]


def write_comparison(table: ComparisonTable, out_dir: str | Path) -> dict[str, Path]:
    """``comparison.json`` (everything) and ``comparison.md`` (the table), written atomically."""
    out_dir = Path(out_dir)
    paths = {"json": out_dir / "comparison.json", "markdown": out_dir / "comparison.md"}
    write_text_atomic(paths["json"], json.dumps(table.to_dict(), indent=2) + "\n")
    write_text_atomic(paths["markdown"], table.to_markdown())
    return paths
