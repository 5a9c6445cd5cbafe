"""Accuracy parity: does the .tflite score like the Keras model it came from, label by label?

Both models see the same pixels. The report holds the absolute probability differences, each
model's per-label and mean ROC-AUC and their deltas, and how often the two agree at the operating
thresholds; ``passed`` applies the tolerance of the export mode (``tfcxr.export.modes``). AUC
deltas are only gated for labels with enough positives and negatives: with a handful of
positives one swapped pair moves the AUC by more than any quantisation error.

A label whose Keras logits barely vary across the films (span below ``FLAT_LOGIT_SPAN``) is one
the model has not learned: its ranking is decided by differences smaller than any quantisation
step, so every mode reorders it. The report names such labels and says so, instead of blaming
the conversion; the remedy is training, not a gentler export mode.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from tfcxr.export.modes import ParityTolerance, get_mode
from tfcxr.metrics import per_label_auc, sigmoid

# Keras logits spanning less than this across all films (odds varying by ~10 %) carry no ranking
# a quantised model can keep.
FLAT_LOGIT_SPAN = 0.1


@dataclass
class LabelParity:
    label: str
    positives: int
    negatives: int
    keras_auc: float
    tflite_auc: float
    auc_delta: float
    max_abs_prob_diff: float
    threshold: float
    agreement: float  # fraction of images both models put on the same side of the threshold
    gated: bool
    logit_span: float = float("nan")  # max - min of the Keras logits across the films

    @property
    def learned(self) -> bool:
        """False when the Keras scores barely vary across films (``FLAT_LOGIT_SPAN``)."""
        return not self.logit_span < FLAT_LOGIT_SPAN

    def not_learned_note(self, images: int) -> str:
        return (f"model has not learned {self.label}: its scores span only {self.logit_span:.2g} "
                f"(logits) across {images} films, so any perturbation reorders them; train it "
                "further rather than blaming quantisation")


@dataclass
class ParityReport:
    mode: str
    images: int
    tolerance: ParityTolerance
    max_abs_prob_diff: float
    mean_abs_prob_diff: float
    keras_mean_auc: float
    tflite_mean_auc: float
    mean_auc_delta: float
    agreement: float
    labels: list[LabelParity]
    failures: list[str] = field(default_factory=list)
    gated_abs_prob_diff: float = float("nan")  # |dp| at the tolerance's prob_quantile

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        out = asdict(self)
        out["passed"] = self.passed
        out["not_learned"] = self.not_learned
        return finite_or_none(out)

    @property
    def not_learned(self) -> list[str]:
        return [row.label for row in self.labels if not row.learned]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def _gated_diff_text(self) -> str:
        quantile = self.tolerance.prob_quantile
        return (f", {_quantile_name(quantile)} |dp| {self.gated_abs_prob_diff:.2e}"
                if quantile < 1.0 else "")

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        lines = [f"parity {self.mode}: {verdict} on {self.images} images; max |dp| "
                 f"{self.max_abs_prob_diff:.2e}{self._gated_diff_text()}, mean |dp| "
                 f"{self.mean_abs_prob_diff:.2e}; mean AUC "
                 f"keras {self.keras_mean_auc:.4f} tflite {self.tflite_mean_auc:.4f} "
                 f"(delta {self.mean_auc_delta:+.4f}); agreement at thresholds {self.agreement:.4f}",
                 f"{'label':<20} {'pos':>4} {'keras':>7} {'tflite':>7} {'dAUC':>8} "
                 f"{'max|dp|':>9} {'agree':>6} gated"]
        for row in self.labels:
            lines.append(f"{row.label:<20} {row.positives:>4} {row.keras_auc:>7.4f} "
                         f"{row.tflite_auc:>7.4f} {row.auc_delta:>+8.4f} "
                         f"{row.max_abs_prob_diff:>9.2e} {row.agreement:>6.3f} "
                         f"{'yes' if row.gated else 'no'}")
        lines += [f"NOTE: {row.not_learned_note(self.images)}" for row in self.labels
                  if not row.learned and not any(f.startswith(f"{row.label}:") for f in self.failures)]
        lines += [f"FAIL: {failure}" for failure in self.failures]
        return "\n".join(lines)


def finite_or_none(value):
    """``value`` with every non-finite float (NaN, inf), at any depth, as None: strict JSON."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def check_parity(keras_logits, tflite_logits, labels, mask, label_names, mode: str,
                 thresholds: dict[str, float] | None = None,
                 tolerance: ParityTolerance | None = None) -> ParityReport:
    """Compare two models' logits ([N, C], same images, same order) against the labels."""
    keras_logits, tflite_logits = np.asarray(keras_logits), np.asarray(tflite_logits)
    if keras_logits.shape != tflite_logits.shape:
        raise ValueError(f"keras logits {keras_logits.shape} and tflite logits "
                         f"{tflite_logits.shape} differ in shape")
    tolerance = tolerance or get_mode(mode).tolerance
    labels = np.asarray(labels)
    mask = np.ones_like(labels) if mask is None else np.asarray(mask)
    p_keras, p_tflite = sigmoid(keras_logits), sigmoid(tflite_logits)
    diff = np.abs(p_keras - p_tflite)
    auc_keras = per_label_auc(labels, p_keras, mask, label_names)
    auc_tflite = per_label_auc(labels, p_tflite, mask, label_names)
    thresholds = thresholds or {}
    rows, failures = [], []
    for j, name in enumerate(label_names):
        counted = mask[:, j] == 1
        positives = int((labels[counted, j] == 1).sum())
        negatives = int(counted.sum()) - positives
        threshold = float(thresholds.get(name, 0.5))
        agreement = float(np.mean((p_keras[:, j] >= threshold) == (p_tflite[:, j] >= threshold)))
        k_auc, t_auc = auc_keras[f"auc_{name}"], auc_tflite[f"auc_{name}"]
        gated = min(positives, negatives) >= tolerance.min_positives
        span = float(np.ptp(keras_logits[:, j])) if len(keras_logits) else float("nan")
        row = LabelParity(name, positives, negatives, k_auc, t_auc, t_auc - k_auc,
                          float(diff[:, j].max()), threshold, agreement, gated, span)
        rows.append(row)
        limit = tolerance.max_label_auc_delta
        if gated and limit is not None and not abs(row.auc_delta) <= limit:
            delta = f"AUC delta {row.auc_delta:+.4f} exceeds {limit} ({positives} positives)"
            failures.append(f"{name}: {row.not_learned_note(len(labels))} ({delta})"
                            if not row.learned else f"{name}: {delta}")
    mean_delta = auc_tflite["auc"] - auc_keras["auc"]
    gated_diff = float(np.quantile(diff, tolerance.prob_quantile)) if diff.size else 0.0
    if tolerance.max_abs_prob is not None and not gated_diff <= tolerance.max_abs_prob:
        failures.append(f"{_quantile_name(tolerance.prob_quantile)} |probability difference| "
                        f"{gated_diff:.2e} exceeds {tolerance.max_abs_prob:.0e}")
    if (tolerance.max_mean_auc_delta is not None and np.isfinite(mean_delta)
            and not abs(mean_delta) <= tolerance.max_mean_auc_delta):
        flat = [row.label for row in rows if not row.learned]
        failures.append(f"mean AUC delta {mean_delta:+.4f} exceeds {tolerance.max_mean_auc_delta}"
                        + (f" (labels the model has not learned: {', '.join(flat)})" if flat else ""))
    if not np.isfinite(tflite_logits).all():
        failures.append("the TFLite model produced non-finite logits")
    return ParityReport(mode, len(labels), tolerance, float(diff.max()), float(diff.mean()),
                        auc_keras["auc"], auc_tflite["auc"], float(mean_delta),
                        float(np.mean([r.agreement for r in rows])), rows, failures,
                        gated_abs_prob_diff=gated_diff)


def _quantile_name(quantile: float) -> str:
    return "max" if quantile >= 1.0 else f"{100 * quantile:g}th-percentile"
