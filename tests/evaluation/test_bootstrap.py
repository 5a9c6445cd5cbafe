import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tfcxr.data.labels import CHEXPERT_LABELS
from tfcxr.evaluation import CHEXPERT_COMPETITION_LABELS, bootstrap_auc, weighted_auc
from tfcxr.evaluation.bootstrap import resample_weights
from tfcxr.evaluation.inputs import check_patient_ids


def test_rank_auc_equals_sklearn(scores):
    for j in range(len(scores.label_names)):
        y, p = scores.labels[:, j], scores.probs[:, j]
        ours = weighted_auc(y, p, np.ones((1, len(y))))[0]
        assert ours == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        coarse = np.round(p, 2)  # many ties: each counts one half
        assert weighted_auc(y, coarse, np.ones((1, len(y))))[0] == \
            pytest.approx(roc_auc_score(y, coarse), abs=1e-12)


def test_integer_weights_equal_repeated_rows(scores):
    rng = np.random.default_rng(3)
    weights = rng.integers(0, 4, size=(5, len(scores.labels))).astype(float)
    y, p = scores.labels[:, 2], np.round(scores.probs[:, 2], 3)
    ours = weighted_auc(y, p, weights)
    for b, w in enumerate(weights.astype(int)):
        assert ours[b] == pytest.approx(roc_auc_score(np.repeat(y, w), np.repeat(p, w)), abs=1e-12)


def test_one_class_gives_nan():
    assert np.isnan(weighted_auc(np.zeros(4), np.arange(4.0), np.ones((1, 4))))[0]
    assert np.isnan(weighted_auc(np.array([0.0, 1.0]), np.array([0.2, 0.8]),
                                 np.array([[1.0, 0.0]])))[0]


def test_point_matches_sklearn_and_ci_contains_it(scores):
    result = bootstrap_auc(scores.labels, scores.probs, None, scores.patient_ids,
                           n_boot=300, label_names=scores.label_names)
    for j, name in enumerate(scores.label_names):
        interval = result.per_label[name]
        assert interval.estimate == pytest.approx(roc_auc_score(scores.labels[:, j],
                                                                scores.probs[:, j]))
        assert interval.low < interval.estimate < interval.high
        assert interval.n_valid == 300
    aucs = [result.per_label[n].estimate for n in scores.label_names]
    assert result.mean.estimate == pytest.approx(np.mean(aucs))
    assert result.mean.low < result.mean.estimate < result.mean.high
    assert result.subsets == {}  # NIH names: the CheXpert five are not all there


def test_interval_narrows_with_more_data(scores):
    def widths(rows):
        r = bootstrap_auc(scores.labels[rows], scores.probs[rows], None,
                          scores.patient_ids[rows], n_boot=500, label_names=scores.label_names)
        return {k: v.high - v.low for k, v in [("mean", r.mean), *r.per_label.items()]}

    quarter = np.random.default_rng(0).permutation(len(scores.labels))[:155]
    small, full = widths(quarter), widths(np.arange(len(scores.labels)))
    assert full["mean"] < 0.7 * small["mean"]  # 4x the patients: about half the width
    for name in ("Infiltration", "Atelectasis", "Nodule", "Effusion"):  # >= 82 positives each
        assert full[name] < 0.8 * small[name], name


def test_resampling_draws_patients_with_all_their_films():
    patient_ids = np.repeat(["p0", "p1", "p2", "p3", "p4"], [1, 2, 3, 4, 5])
    codes = check_patient_ids(patient_ids, len(patient_ids))
    weights = np.concatenate(list(resample_weights(codes, 200, seed=1)))
    assert weights.shape == (200, 15)
    for p in np.unique(codes):
        films = weights[:, codes == p]
        assert (films == films[:, :1]).all()  # all of a patient's films share one weight
    per_patient = np.stack([weights[:, codes == p][:, 0] for p in np.unique(codes)], axis=1)
    assert (per_patient.sum(axis=1) == 5).all()  # 5 patients drawn per resample
    assert (per_patient == 0).any() and (per_patient >= 2).any()  # with replacement
    again = np.concatenate(list(resample_weights(codes, 200, seed=1)))
    assert (again == weights).all()


def test_patient_level_interval_is_wider_than_film_level_for_clustered_films():
    # 40 patients x 10 films: label and score belong to the patient, films add tiny noise, so
    # there are only 40 independent observations. Film-level resampling pretends there are 400.
    rng = np.random.default_rng(0)
    patient_label = (np.arange(40) % 2).astype(float)
    patient_score = np.clip(0.5 + 0.15 * (patient_label - 0.5) + rng.normal(0, 0.2, 40), 0, 1)
    patients = np.repeat(np.arange(40), 10)
    labels = patient_label[patients][:, None]
    scores = np.clip(patient_score[patients] + rng.normal(0, 0.01, 400), 0, 1)[:, None]
    by_patient = bootstrap_auc(labels, scores, None, patients, n_boot=1000)
    by_film = bootstrap_auc(labels, scores, None, np.arange(400), n_boot=1000)
    assert by_patient.mean.estimate == by_film.mean.estimate
    width_patient = by_patient.mean.high - by_patient.mean.low
    width_film = by_film.mean.high - by_film.mean.low
    assert width_patient > 2 * width_film


def test_resamples_without_both_classes_are_skipped_and_counted():
    rng = np.random.default_rng(2)
    labels = np.zeros((50, 2))
    labels[:25, 0] = 1
    labels[7, 1] = 1  # one positive patient for label 1
    scores = rng.random((50, 2))
    result = bootstrap_auc(labels, scores, None, np.arange(50), n_boot=400, seed=5)
    codes = check_patient_ids(np.arange(50), 50)
    drawn = np.concatenate(list(resample_weights(codes, 400, seed=5)))[:, 7] > 0
    assert result.per_label["1"].n_valid == drawn.sum() < 400
    assert result.per_label["0"].n_valid == 400
    assert result.mean.n_valid == drawn.sum()  # a mean replicate needs every label


def test_chexpert_competition_mean_when_all_five_present():
    rng = np.random.default_rng(4)
    labels = (rng.random((300, len(CHEXPERT_LABELS))) < 0.3).astype(float)
    scores = np.clip(0.3 * labels + 0.7 * rng.random(labels.shape), 0, 1)
    result = bootstrap_auc(labels, scores, None, np.arange(300) // 2, n_boot=200,
                           label_names=CHEXPERT_LABELS)
    five = result.subsets["chexpert_competition"]
    expected = np.mean([roc_auc_score(labels[:, CHEXPERT_LABELS.index(n)],
                                      scores[:, CHEXPERT_LABELS.index(n)])
                        for n in CHEXPERT_COMPETITION_LABELS])
    assert five.estimate == pytest.approx(expected)
    assert five.estimate != pytest.approx(result.mean.estimate)
    assert five.low < five.estimate < five.high
    # the five cover fewer labels, so their mean varies more than the 14-label mean
    assert five.high - five.low > result.mean.high - result.mean.low


def test_masked_rows_do_not_count():
    rng = np.random.default_rng(6)
    labels = (rng.random((200, 3)) < 0.4).astype(float)
    scores = rng.random((200, 3))
    mask = rng.random((200, 3)) < 0.6
    result = bootstrap_auc(np.where(mask, labels, np.nan), scores, mask, np.arange(200),
                           n_boot=50)
    for j in range(3):
        expected = roc_auc_score(labels[mask[:, j], j], scores[mask[:, j], j])
        assert result.per_label[str(j)].estimate == pytest.approx(expected)


def test_thousand_resamples_fourteen_labels_thousand_images_take_seconds():
    rng = np.random.default_rng(7)
    labels = (rng.random((1000, 14)) < 0.1).astype(float)
    scores = rng.random((1000, 14))
    start = time.perf_counter()
    result = bootstrap_auc(labels, scores, None, np.arange(1000) // 3, n_boot=1000)
    elapsed = time.perf_counter() - start
    assert result.mean.n_valid == 1000
    assert elapsed < 10, f"bootstrap took {elapsed:.1f} s"
