import numpy as np
import pytest
from sklearn.metrics import brier_score_loss

from tfcxr.errors import TfcxrError
from tfcxr.evaluation import (
    brier_score, calibration_by_label, expected_calibration_error, reliability_curve)


def _calibrated(n=20000, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    return (rng.random(n) < p).astype(float), p


def test_calibrated_scores_have_small_ece_and_overconfident_ones_large():
    y, p = _calibrated()
    assert expected_calibration_error(y, p) < 0.02
    overconfident = np.clip((p - 0.5) * 3 + 0.5, 0, 1)
    assert expected_calibration_error(y, overconfident) > 0.1
    assert expected_calibration_error(y, overconfident, strategy="quantile") > 0.1


def test_reliability_curve_bins():
    y, p = _calibrated(5000, seed=1)
    uniform = reliability_curve(y, p, n_bins=5)
    assert np.allclose(uniform.bin_edges, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert uniform.counts.sum() == 5000
    assert np.allclose(uniform.mean_predicted, [0.1, 0.3, 0.5, 0.7, 0.9], atol=0.02)
    assert np.allclose(uniform.fraction_positive, uniform.mean_predicted, atol=0.05)
    quantile = reliability_curve(y, p ** 4, n_bins=5, strategy="quantile")
    assert quantile.counts.min() >= 999 and quantile.counts.max() <= 1001
    empty = reliability_curve(np.array([0.0, 1.0]), np.array([0.05, 0.95]), n_bins=4)
    assert list(empty.counts) == [1, 0, 0, 1] and np.isnan(empty.mean_predicted[1])
    with pytest.raises(TfcxrError, match="bins"):
        reliability_curve(y, p, strategy="log")


def test_brier_matches_sklearn_and_masks_apply(scores):
    mask = np.random.default_rng(2).random(scores.labels.shape) < 0.7
    result = calibration_by_label(scores.labels, scores.probs, mask, scores.label_names)
    for j, name in enumerate(scores.label_names):
        rows = mask[:, j]
        expected = brier_score_loss(scores.labels[rows, j], scores.probs[rows, j])
        assert result[name].brier == pytest.approx(expected)
        assert result[name].curve.counts.sum() == rows.sum()
        assert 0 <= result[name].ece < 0.2
    assert brier_score([1.0, 0.0], [0.5, 0.5]) == 0.25
