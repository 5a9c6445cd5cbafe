import math

import numpy as np
import pytest

from tfcxr.evaluation import metrics_at_thresholds, youden_thresholds

KEYS = {"threshold", "sensitivity", "specificity", "positives", "negatives", "method"}


def test_separable_labels_reach_j_of_one():
    rng = np.random.default_rng(0)
    labels = (rng.random((300, 3)) < 0.3).astype(float)
    probs = np.where(labels == 1, rng.uniform(0.6, 1.0, labels.shape),
                     rng.uniform(0.0, 0.4, labels.shape))
    result = youden_thresholds(labels, probs, None, ["a", "b", "c"])
    assert list(result) == ["a", "b", "c"]
    for j, name in enumerate(result):
        entry = result[name]
        assert set(entry) == KEYS and entry["method"] == "youden_j"
        assert entry["sensitivity"] + entry["specificity"] - 1 == 1.0
        assert probs[labels[:, j] == 0, j].max() < entry["threshold"] <= \
            probs[labels[:, j] == 1, j].min()
        assert entry["positives"] == labels[:, j].sum()
        assert entry["negatives"] == (labels[:, j] == 0).sum()
        assert isinstance(entry["positives"], int) and isinstance(entry["threshold"], float)


def test_youden_matches_a_brute_force_search(scores):
    result = youden_thresholds(scores.labels, scores.probs, None, scores.label_names)
    for j, name in enumerate(scores.label_names):
        y, p = scores.labels[:, j] == 1, scores.probs[:, j]
        best = max((p[y] >= t).mean() + (p[~y] < t).mean() - 1 for t in np.unique(p))
        entry = result[name]
        assert entry["sensitivity"] + entry["specificity"] - 1 == pytest.approx(best)
        assert entry["sensitivity"] == pytest.approx((p[y] >= entry["threshold"]).mean())


def test_label_without_positives_falls_back_to_half_and_is_flagged():
    labels = np.array([[0, 1], [0, 0], [0, 1], [0, 0]], dtype=float)
    probs = np.array([[0.7, 0.9], [0.2, 0.1], [0.4, 0.8], [0.1, 0.3]])
    mask = np.array([[1, 1], [1, 1], [1, 0], [1, 1]])
    result = youden_thresholds(labels, probs, mask, ["none", "some"])
    none = result["none"]
    assert set(none) == KEYS
    assert none["method"] == "default_no_positives" and none["threshold"] == 0.5
    assert none["positives"] == 0 and none["negatives"] == 4
    assert math.isnan(none["sensitivity"]) and none["specificity"] == 0.75
    assert result["some"]["method"] == "youden_j" and result["some"]["positives"] == 1


def test_metrics_at_thresholds_counts():
    labels = np.array([[1], [1], [1], [0], [0], [0], [0], [1]], dtype=float)
    probs = np.array([[0.9], [0.6], [0.2], [0.7], [0.1], [0.3], [0.5], [0.95]])
    mask = np.array([[1], [1], [1], [1], [1], [1], [1], [0]])  # the last row does not count
    m = metrics_at_thresholds(labels, probs, mask, {"x": 0.5})["x"]
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (2, 1, 2, 2)  # 0.5 itself is called positive
    assert (m["positives"], m["negatives"]) == (3, 4)
    assert m["sensitivity"] == pytest.approx(2 / 3) and m["specificity"] == 0.5
    assert m["ppv"] == 0.5 and m["npv"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    from_youden = metrics_at_thresholds(labels, probs, mask, {"x": {"threshold": 0.5}})
    assert from_youden["x"] == m


def test_youden_thresholds_feed_metrics_at_thresholds(scores):
    chosen = youden_thresholds(scores.labels, scores.probs, None, scores.label_names)
    measured = metrics_at_thresholds(scores.labels, scores.probs, None, chosen)
    for name in scores.label_names:
        assert measured[name]["sensitivity"] == pytest.approx(chosen[name]["sensitivity"])
        assert measured[name]["specificity"] == pytest.approx(chosen[name]["specificity"])
