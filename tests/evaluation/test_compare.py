import json

import numpy as np
import pytest

from tfcxr.errors import TfcxrError
from tfcxr.evaluation import bootstrap_auc, compare_runs, paired_bootstrap, write_comparison
from tfcxr.evaluation.compare import paired_delta


def test_a_model_beats_noise_with_a_small_p_value(scores):
    noise = np.random.default_rng(0).random(scores.probs.shape)
    result = paired_bootstrap(scores.labels, scores.probs, noise, None, scores.patient_ids,
                              scores.label_names, n_boot=500, names=("model", "noise"))
    assert (result.reference, result.other) == ("model", "noise")
    assert result.mean.estimate < -0.2  # other - reference
    assert result.mean.high < 0
    assert result.mean.p_value == pytest.approx(2 / 501)  # no resample crosses zero
    assert result.per_label["Cardiomegaly"].p_value < 0.01


def test_a_model_against_itself_plus_tiny_noise_is_not_significant(scores):
    rng = np.random.default_rng(0)
    jittered = scores.probs * np.exp(rng.normal(0, 0.01, scores.probs.shape))  # ~1% relative
    assert not np.array_equal(jittered, scores.probs)
    result = paired_bootstrap(scores.labels, scores.probs, jittered, None, scores.patient_ids,
                              scores.label_names, n_boot=500)
    assert result.mean.estimate != 0
    assert result.mean.low < 0 < result.mean.high
    assert result.mean.p_value > 0.05
    # paired: the delta interval is far tighter than either model's own interval
    alone = bootstrap_auc(scores.labels, scores.probs, None, scores.patient_ids, n_boot=500)
    assert result.mean.high - result.mean.low < 0.2 * (alone.mean.high - alone.mean.low)


def test_identical_scores_give_zero_delta_and_p_one(scores):
    result = paired_bootstrap(scores.labels, scores.probs, scores.probs.copy(), None,
                              scores.patient_ids, scores.label_names, n_boot=100)
    assert result.mean.estimate == 0 and result.mean.p_value == 1.0
    assert all(d.p_value == 1.0 for d in result.per_label.values())


def test_p_value_formula_counts_crossings_with_plus_one():
    reps_ref = np.zeros(5)
    reps_other = np.array([-0.1, 0.2, 0.3, 0.05, np.nan])  # one crossing of 4 valid
    delta = paired_delta(0.0, 0.1, reps_ref, reps_other)
    assert delta.n_valid == 4
    assert delta.p_value == pytest.approx(2 * (1 + 1) / (1 + 4))
    negative = paired_delta(0.1, 0.0, reps_other, reps_ref)  # mirror image: same p
    assert negative.estimate == pytest.approx(-0.1) and negative.p_value == delta.p_value
    assert paired_delta(0.0, 0.1, np.zeros(3), np.array([-1.0, -1, -1])).p_value == 1.0


def test_table_of_several_runs_shares_the_resamples(scores, tmp_path):
    rng = np.random.default_rng(1)
    runs = {"model": scores.probs, "noise": rng.random(scores.probs.shape),
            "half": 0.5 * scores.probs + 0.5 * rng.random(scores.probs.shape)}
    table = compare_runs(scores.labels, runs, None, scores.patient_ids, scores.label_names,
                         n_boot=200, seed=3)
    assert table.reference == "model" and list(table.deltas) == ["noise", "half"]
    alone = bootstrap_auc(scores.labels, runs["half"], None, scores.patient_ids, n_boot=200,
                          seed=3, label_names=scores.label_names)
    assert table.runs["half"].mean == alone.mean  # same seed, same patient resamples
    assert table.deltas["half"].mean.estimate == pytest.approx(
        table.runs["half"].mean.estimate - table.runs["model"].mean.estimate)
    paths = write_comparison(table, tmp_path / "cmp")
    markdown = paths["markdown"].read_text()
    assert "| model |" in markdown and "| noise |" in markdown and "reference" in markdown
    data = json.loads(paths["json"].read_text(), parse_constant=lambda c: pytest.fail(c))
    assert data["deltas"]["noise"]["mean"]["p_value"] < 0.01


def test_runs_must_be_two_on_the_same_images(scores):
    with pytest.raises(TfcxrError, match="at least two runs"):
        compare_runs(scores.labels, {"a": scores.probs}, None, scores.patient_ids,
                     scores.label_names)
    with pytest.raises(TfcxrError, match="scores of 'b' has shape"):
        compare_runs(scores.labels, {"a": scores.probs, "b": scores.probs[:-1]}, None,
                     scores.patient_ids, scores.label_names)
    with pytest.raises(TfcxrError, match="reference run 'c'"):
        compare_runs(scores.labels, {"a": scores.probs, "b": scores.probs}, None,
                     scores.patient_ids, scores.label_names, reference="c")
