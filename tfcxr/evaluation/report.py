"""One model on one labelled image set: every number a paper or a deployment review needs.

``evaluate_arrays`` turns labels, probabilities, mask and patient ids into an
``EvaluationReport``: per-label AUC with a patient-level bootstrap interval, positives and
negatives, the operating point (threshold, sensitivity, specificity, PPV, F1), calibration
(ECE, Brier), the mean AUC with its interval and, when all five are evaluated, the CheXpert
competition mean. The report holds the ROC and reliability curves too, so ``write_report`` and
later tools (a comparison, a re-render) need only the report, never the arrays again.
``write_report`` writes ``report.json`` (strict JSON, NaN as null), ``report.md``,
a standalone ``report.html`` and the ``roc.png`` / ``calibration.png`` figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve

from tfcxr.errors import TfcxrError
from tfcxr.evaluation.bootstrap import (
    CONFIDENCE, Interval, point_and_replicates, resolve_subsets, summarize)
from tfcxr.evaluation.calibration import calibration_by_label
from tfcxr.evaluation.inputs import check_arrays, check_patient_ids
from tfcxr.evaluation.jsonable import jsonable, nan_if_none
from tfcxr.evaluation.operating_points import metrics_at_thresholds, youden_thresholds
from tfcxr.version import __version__
from tfcxr.io import write_text_atomic

THRESHOLDS_FROM_THIS_DATA = "youden_j on this data"
THRESHOLDS_GIVEN = "given"


@dataclass
class LabelRow:
    label: str
    positives: int
    negatives: int
    auc: Interval
    threshold: float
    threshold_method: str  # "youden_j", "default_no_positives" or "given"
    sensitivity: float
    specificity: float
    ppv: float
    npv: float
    f1: float
    ece: float
    brier: float
    roc: dict[str, list[float]] = field(default_factory=dict)  # fpr, tpr
    # bin_edges, mean_predicted, fraction_positive, counts
    reliability: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class EvaluationReport:
    model_name: str
    model_path: str | None
    data: str
    n_images: int
    n_patients: int
    label_names: list[str]
    rows: list[LabelRow]
    mean_auc: Interval
    subsets: dict[str, Interval]  # e.g. "chexpert_competition"
    thresholds_source: str
    n_boot: int
    seed: int
    confidence: float = CONFIDENCE
    calibration_bins: int = 10
    calibration_strategy: str = "uniform"
    notes: list[str] = field(default_factory=list)
    tfcxr_version: str = __version__

    @property
    def competition_auc(self) -> Interval | None:
        return self.subsets.get("chexpert_competition")

    def row(self, label: str) -> LabelRow:
        return self.rows[self.label_names.index(label)]

    def thresholds(self) -> dict[str, float]:
        """label -> threshold, ready to pass to another ``evaluate_arrays`` call."""
        return {r.label: r.threshold for r in self.rows}

    def to_dict(self) -> dict:
        return jsonable(self)

    @classmethod
    def from_dict(cls, data: dict) -> EvaluationReport:
        def interval(d):
            return Interval(nan_if_none(d["estimate"]), nan_if_none(d["low"]),
                            nan_if_none(d["high"]), int(d["n_valid"]))

        rows = []
        for r in data["rows"]:
            values = {f.name: r[f.name] for f in fields(LabelRow)}
            values["auc"] = interval(r["auc"])
            values["reliability"] = {k: [nan_if_none(v) for v in curve]
                                     for k, curve in r["reliability"].items()}
            for name in ("threshold", "sensitivity", "specificity", "ppv", "npv", "f1", "ece",
                         "brier"):
                values[name] = nan_if_none(r[name])
            rows.append(LabelRow(**values))
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values.update(rows=rows, mean_auc=interval(data["mean_auc"]),
                      subsets={k: interval(v) for k, v in data["subsets"].items()})
        return cls(**values)


def read_report(path: str | Path) -> EvaluationReport:
    """A report written by ``write_report``: ``report.json`` or the folder holding it."""
    path = Path(path)
    path = path / "report.json" if path.is_dir() else path
    try:
        return EvaluationReport.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise TfcxrError(f"{path}: no evaluation report there") from None
    except (ValueError, KeyError, TypeError) as e:
        raise TfcxrError(f"{path}: not a tfcxr evaluation report ({e})") from None


def _ordered_thresholds(thresholds: Mapping, label_names: Sequence[str]) -> dict:
    missing = [n for n in label_names if n not in thresholds]
    if missing:
        raise TfcxrError(f"no threshold given for label(s) {missing}")
    return {n: thresholds[n] for n in label_names}


def evaluate_arrays(labels, probs, mask, patient_ids, label_names: Sequence[str],
                    thresholds: Mapping[str, float | Mapping] | None = None,
                    n_boot: int = 1000, seed: int = 0, *, model_name: str = "model",
                    model_path: str | Path | None = None, data: str = "",
                    calibration_bins: int = 10, calibration_strategy: str = "uniform",
                    subsets: Mapping[str, Sequence[str]] | None = None) -> EvaluationReport:
    """Evaluate [N, C] probabilities against labels (mask None: every label counts).

    thresholds: label -> threshold (or a ``youden_thresholds`` dict), best chosen on a
    validation split; None chooses Youden-J thresholds on this data and notes the optimism.
    subsets: extra label-subset means; None reports the CheXpert five when all are present.
    """
    if n_boot < 1:
        raise TfcxrError(f"n_boot must be at least 1, got {n_boot}")
    arrays = check_arrays(labels, probs, mask, label_names)
    names = list(arrays.label_names)
    codes = check_patient_ids(patient_ids, len(arrays.labels))
    point, reps = point_and_replicates(arrays.labels, [arrays.probs], arrays.mask, codes,
                                       n_boot, seed)
    boot = summarize(point[0], reps[0], names, resolve_subsets(names, subsets), n_boot, seed)
    clean = (arrays.labels, arrays.probs, arrays.mask)
    if thresholds is None:
        chosen = youden_thresholds(*clean, names)
        source = THRESHOLDS_FROM_THIS_DATA
    else:
        chosen = _ordered_thresholds(thresholds, names)
        source = THRESHOLDS_GIVEN
    at_threshold = metrics_at_thresholds(*clean, chosen)
    calibration = calibration_by_label(*clean, names, calibration_bins, calibration_strategy)

    rows = []
    for j, name in enumerate(names):
        m, c, given = at_threshold[name], calibration[name], chosen[name]
        method = given.get("method", THRESHOLDS_GIVEN) if isinstance(given, Mapping) \
            else THRESHOLDS_GIVEN
        rows.append(LabelRow(
            name, m["positives"], m["negatives"], boot.per_label[name], m["threshold"], method,
            m["sensitivity"], m["specificity"], m["ppv"], m["npv"], m["f1"], c.ece, c.brier,
            _roc_points(arrays.labels[arrays.mask[:, j], j], arrays.probs[arrays.mask[:, j], j]),
            {"bin_edges": c.curve.bin_edges.tolist(),
             "mean_predicted": c.curve.mean_predicted.tolist(),
             "fraction_positive": c.curve.fraction_positive.tolist(),
             "counts": c.curve.counts.tolist()}))
    return EvaluationReport(
        model_name, None if model_path is None else str(model_path), data, len(arrays.labels),
        int(codes.max()) + 1 if len(codes) else 0, names, rows, boot.mean, boot.subsets, source,
        n_boot, seed, CONFIDENCE, calibration_bins, calibration_strategy,
        _notes(rows, boot.mean, source, n_boot))


def _roc_points(y: np.ndarray, p: np.ndarray) -> dict[str, list[float]]:
    if len(np.unique(y)) < 2:
        return {"fpr": [], "tpr": []}
    fpr, tpr, _ = roc_curve(y, p)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


def _notes(rows: list[LabelRow], mean: Interval, source: str, n_boot: int) -> list[str]:
    notes = []
    if source == THRESHOLDS_FROM_THIS_DATA:
        notes.append("Thresholds were chosen on this same data (Youden's J), so sensitivity, "
                     "specificity, PPV and F1 are optimistic; pass thresholds chosen on a "
                     "validation split for an unbiased operating point.")
    undefined = [r.label for r in rows if np.isnan(r.auc.estimate)]
    if undefined:
        notes.append(f"No AUC for {', '.join(undefined)}: only one class among the counted "
                     "films; left out of the mean.")
    fallback = [r.label for r in rows if r.threshold_method == "default_no_positives"]
    if fallback:
        notes.append(f"Threshold 0.5 by default (no positives or no negatives) for "
                     f"{', '.join(fallback)}.")
    thin = [f"{r.label} ({r.auc.n_valid})" for r in rows
            if not np.isnan(r.auc.estimate) and r.auc.n_valid < n_boot]
    if thin:
        notes.append(f"Some resamples drew a single class and were skipped; valid resamples of "
                     f"{n_boot}: {', '.join(thin)}.")
    if not np.isnan(mean.estimate) and mean.n_valid < n_boot:
        notes.append(f"The mean-AUC interval rests on the {mean.n_valid} of {n_boot} resamples "
                     "in which every label had both classes.")
    return notes


def write_report(report: EvaluationReport, out_dir: str | Path,
                 plots: bool = True) -> dict[str, Path]:
    """Write the report files into ``out_dir`` (created), each atomically; returns their paths.

    Keys: ``roc``, ``calibration`` (with ``plots``), ``markdown``, ``html``, ``json``.
    """
    from tfcxr.evaluation.render import figures, to_html, to_markdown

    out_dir = Path(out_dir)
    paths = figures(report, out_dir) if plots else {}
    paths["markdown"] = out_dir / "report.md"
    write_text_atomic(paths["markdown"], to_markdown(report))
    paths["html"] = out_dir / "report.html"
    write_text_atomic(paths["html"], to_html(report, {k: paths[k] for k in ("roc", "calibration")
                                                      if k in paths}))
    paths["json"] = out_dir / "report.json"
    write_text_atomic(paths["json"], json.dumps(report.to_dict(), indent=2) + "\n")
    return paths
