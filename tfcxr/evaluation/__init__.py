"""Evaluation: per-label AUC with patient-level bootstrap intervals, paired model comparison,
operating points, calibration and paper-ready reports. NumPy, scikit-learn and matplotlib only:
no TensorFlow is imported, so reports can be built from saved predictions anywhere.

    from tfcxr.evaluation import evaluate_arrays, write_report
    report = evaluate_arrays(labels, probs, mask, patient_ids, label_names, model_name="student")
    write_report(report, "runs/student/report")  # report.json/.md/.html, roc.png, calibration.png
"""

from tfcxr.evaluation.bootstrap import (
    CHEXPERT_COMPETITION_LABELS, BootstrapResult, Interval, bootstrap_auc, default_subsets,
    weighted_auc)
from tfcxr.evaluation.calibration import (
    ReliabilityCurve, brier_score, calibration_by_label, expected_calibration_error,
    reliability_curve)
from tfcxr.evaluation.compare import (
    ComparisonTable, Delta, PairedComparison, compare_runs, paired_bootstrap, write_comparison)
from tfcxr.evaluation.operating_points import metrics_at_thresholds, youden_thresholds
from tfcxr.evaluation.report import (
    EvaluationReport, LabelRow, evaluate_arrays, read_report, write_report)

__all__ = [
    "CHEXPERT_COMPETITION_LABELS", "BootstrapResult", "ComparisonTable", "Delta",
    "EvaluationReport", "Interval", "LabelRow", "PairedComparison", "ReliabilityCurve",
    "bootstrap_auc", "brier_score", "calibration_by_label", "compare_runs", "default_subsets",
    "evaluate_arrays", "expected_calibration_error", "metrics_at_thresholds", "paired_bootstrap",
    "read_report", "reliability_curve", "weighted_auc", "write_comparison", "write_report",
    "youden_thresholds",
]
