import numpy as np
import pytest

from tfcxr.errors import TfcxrError
from tfcxr.evaluation import (
    bootstrap_auc, calibration_by_label, evaluate_arrays, metrics_at_thresholds, youden_thresholds)

NAMES = ["a", "b", "c"]


def _arrays(n=20):
    rng = np.random.default_rng(0)
    return (rng.random((n, 3)) < 0.5).astype(float), rng.random((n, 3)), np.arange(n)


LABELS, PROBS, IDS = _arrays()
NAN_IN_ROW_4 = np.where(np.arange(20)[:, None] == 4, np.nan, PROBS)


@pytest.mark.parametrize("override, message", [
    ({"probs": PROBS[:, :2]}, r"probs has shape \(20, 2\) but labels has shape \(20, 3\)"),
    ({"labels": LABELS[:-1]}, r"probs has shape \(20, 3\) but labels has shape \(19, 3\)"),
    ({"labels": LABELS[:, 0]}, "labels must be a 2-D"),
    ({"mask": np.ones((20, 1))}, r"mask has shape \(20, 1\)"),
    ({"label_names": NAMES[:2]}, "2 label names for 3 label columns"),
    ({"label_names": ["a", "a", "b"]}, "unique"),
    ({"patient_ids": IDS[:-1]}, "one id per image"),
    ({"probs": NAN_IN_ROW_4}, "3 NaN/infinite score.*row 4, label 'a'"),
    ({"probs": PROBS * 8 - 4}, r"probabilities in \[0, 1\].*sigmoid"),
    ({"labels": LABELS * 2}, "0 or 1"),
])
def test_bad_inputs_raise_a_clear_error(override, message):
    args = {"labels": LABELS, "probs": PROBS, "mask": np.ones_like(LABELS), "patient_ids": IDS,
            "label_names": NAMES, **override}
    with pytest.raises(TfcxrError, match=message):
        evaluate_arrays(**args, n_boot=10)


def test_masked_labels_may_hold_anything():
    labels, probs, ids = _arrays()
    mask = np.ones_like(labels)
    mask[3, 1] = 0
    labels[3, 1] = np.nan  # an uncertain CheXpert label, masked out
    report = evaluate_arrays(labels, probs, mask, ids, NAMES, n_boot=10)
    assert report.row("b").positives + report.row("b").negatives == 19


def test_every_entry_point_validates():
    labels, probs, ids = _arrays()
    with pytest.raises(TfcxrError, match="probs has shape"):
        youden_thresholds(labels, probs[:5], None, NAMES)
    with pytest.raises(TfcxrError, match="probs has shape"):
        calibration_by_label(labels, probs[:, :1], None, NAMES)
    with pytest.raises(TfcxrError, match="2 label names"):
        metrics_at_thresholds(labels, probs, None, {"a": 0.5, "b": 0.5})
    with pytest.raises(TfcxrError, match="threshold for 'a'"):
        metrics_at_thresholds(labels, probs, None, {"a": 2.0, "b": 0.5, "c": 0.5})
    with pytest.raises(TfcxrError, match="NaN"):
        bootstrap_auc(labels, np.full_like(probs, np.nan), None, ids)
    with pytest.raises(TfcxrError, match="no threshold given for label"):
        evaluate_arrays(labels, probs, None, ids, NAMES, thresholds={"a": 0.5}, n_boot=10)
    with pytest.raises(TfcxrError, match="empty or missing"):
        bootstrap_auc(labels, probs, None, np.array([""] * 20))
