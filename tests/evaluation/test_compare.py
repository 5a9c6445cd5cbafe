import json

import numpy as np
import pytest

from tfcxr.errors import TfcxrError
from tfcxr.evaluation import bootstrap_auc, compare_runs, paired_bootstrap, write_comparison
from tfcxr.evaluation.compare import paired_delta


def test_chexnet_beats_noise_with_a_small_p_value(chexnet):
    noise = np.random.default_rng(0).random(chexnet.probs.shape)
    result = paired_bootstrap(chexnet.labels, chexnet.probs, noise, None, chexnet.patient_ids,
                              chexnet.label_names, n_boot=500, names=("chexnet", "noise"))
    assert (result.reference, result.other) == ("chexnet", "noise")
    assert result.mean.estimate < -0.2  # other - reference
    assert result.mean.high < 0
    assert result.mean.p_value == pytest.approx(2 / 501)  # no resample crosses zero
    assert result.per_label["Cardiomegaly"].p_value < 0.01


def test_a_model_against_itself_plus_tiny_noise_is_not_significant(chexnet):
    rng = np.random.default_rng(0)
    jittered = chexnet.probs * np.exp(rng.normal(0, 0.01, chexnet.probs.shape))  # ~1% relative
    assert not np.array_equal(jittered, chexnet.probs)
    result = paired_bootstrap(chexnet.labels, chexnet.probs, jittered, None, chexnet.patient_ids,
                              chexnet.label_names, n_boot=500)
    assert result.mean.estimate != 0
    assert result.mean.low < 0 < result.mean.high
    assert result.mean.p_value > 0.05
    # paired: the delta interval is far tighter than either model's own interval
    alone = bootstrap_auc(chexnet.labels, chexnet.probs, None, chexnet.patient_ids, n_boot=500)
    assert result.mean.high - result.mean.low < 0.2 * (alone.mean.high - alone.mean.low)


def test_identical_scores_give_zero_delta_and_p_one(chexnet):
    result = paired_bootstrap(chexnet.labels, chexnet.probs, chexnet.probs.copy(), None,
                              chexnet.patient_ids, chexnet.label_names, n_boot=100)
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


def test_table_of_several_runs_shares_the_resamples(chexnet, tmp_path):
    rng = np.random.default_rng(1)
    runs = {"chexnet": chexnet.probs, "noise": rng.random(chexnet.probs.shape),
            "half": 0.5 * chexnet.probs + 0.5 * rng.random(chexnet.probs.shape)}
    table = compare_runs(chexnet.labels, runs, None, chexnet.patient_ids, chexnet.label_names,
                         n_boot=200, seed=3)
    assert table.reference == "chexnet" and list(table.deltas) == ["noise", "half"]
    alone = bootstrap_auc(chexnet.labels, runs["half"], None, chexnet.patient_ids, n_boot=200,
                          seed=3, label_names=chexnet.label_names)
    assert table.runs["half"].mean == alone.mean  # same seed, same patient resamples
    assert table.deltas["half"].mean.estimate == pytest.approx(
        table.runs["half"].mean.estimate - table.runs["chexnet"].mean.estimate)
    paths = write_comparison(table, tmp_path / "cmp")
    markdown = paths["markdown"].read_text()
    assert "| chexnet |" in markdown and "| noise |" in markdown and "reference" in markdown
    data = json.loads(paths["json"].read_text(), parse_constant=lambda c: pytest.fail(c))
    assert data["deltas"]["noise"]["mean"]["p_value"] < 0.01


def test_runs_must_be_two_on_the_same_images(chexnet):
    with pytest.raises(TfcxrError, match="at least two runs"):
        compare_runs(chexnet.labels, {"a": chexnet.probs}, None, chexnet.patient_ids,
                     chexnet.label_names)
    with pytest.raises(TfcxrError, match="scores of 'b' has shape"):
        compare_runs(chexnet.labels, {"a": chexnet.probs, "b": chexnet.probs[:-1]}, None,
                     chexnet.patient_ids, chexnet.label_names)
    with pytest.raises(TfcxrError, match="reference run 'c'"):
        compare_runs(chexnet.labels, {"a": chexnet.probs, "b": chexnet.probs}, None,
                     chexnet.patient_ids, chexnet.label_names, reference="c")
