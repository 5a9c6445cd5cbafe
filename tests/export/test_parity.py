"""The parity gate on arrays, with the real CheXNet scores of the NIH sample as the reference:
what each mode's tolerance accepts and rejects, and why int8 models must output logits."""

import numpy as np
import pandas as pd
import pytest

from tfcxr.data.readers import read_dataset
from tfcxr.export.parity import check_parity
from tfcxr.metrics import sigmoid


@pytest.fixture(scope="module")
def chexnet(nih_sample):
    manifest = read_dataset("nih", nih_sample)
    probs = pd.read_csv(nih_sample / "chexnet_teacher_probs.csv").set_index("Image Index")
    p = probs.loc[manifest.image_ids, [f"prob_{n}" for n in manifest.label_names]].to_numpy()
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return manifest, np.log(p / (1 - p))


def _check(chexnet, other, mode, **kwargs):
    manifest, logits = chexnet
    return check_parity(logits, other, manifest.targets, manifest.mask, manifest.label_names,
                        mode, **kwargs)


def test_identical_scores_pass_every_mode(chexnet):
    for mode in ("float32", "float16", "dynamic", "int8"):
        report = _check(chexnet, chexnet[1].copy(), mode)
        assert report.passed and report.max_abs_prob_diff == 0 and report.agreement == 1
        assert report.keras_mean_auc > 0.75  # CheXNet ranks these films well


def _moved(chexnet, cells: int, by: float):
    """The CheXNet logits with the probabilities of the ``cells`` first films' first label moved
    by ``by`` (one film each), everything else exact."""
    logits = chexnet[1].copy()
    p = sigmoid(logits[:cells, 0])
    moved = np.clip(p + by * np.where(p < 0.5, 1, -1), 1e-6, 1 - 1e-6)
    logits[:cells, 0] = np.log(moved / (1 - moved))
    return logits


def test_dynamic_bounds_the_99th_percentile_probability_difference_float_modes_the_largest(chexnet):
    """One film moved by 0.1 is a tail dynamic-range quantisation has (each film's activations
    are quantised over its own range); 2 % of the scores moved by 0.1 is not. float16 has no such
    tail: one moved film fails it."""
    films, labels = chexnet[1].shape
    one = _check(chexnet, _moved(chexnet, 1, 0.1), "dynamic")
    assert one.passed and one.max_abs_prob_diff == pytest.approx(0.1, abs=1e-6)
    assert one.gated_abs_prob_diff == 0 and "99th-percentile |dp| 0.00e+00" in one.summary()
    many = _check(chexnet, _moved(chexnet, int(0.02 * films * labels), 0.1), "dynamic")
    assert many.gated_abs_prob_diff == pytest.approx(0.1, abs=1e-6)
    assert (f"99th-percentile |probability difference| {many.gated_abs_prob_diff:.2e} exceeds 5e-02"
            in many.failures)
    float16 = _check(chexnet, _moved(chexnet, 1, 0.1), "float16")
    assert float16.failures == ["max |probability difference| 1.00e-01 exceeds 1e-02"]


def test_float_tolerances_are_on_probabilities(chexnet):
    noisy = chexnet[1] + np.random.default_rng(0).normal(0, 0.01, chexnet[1].shape)
    assert not _check(chexnet, noisy, "float32").passed  # |dp| ~ 2e-3 > 1e-4
    report = _check(chexnet, noisy, "float16")
    assert report.passed and 1e-4 < report.max_abs_prob_diff < 1e-2


def test_int8_gate_is_on_per_label_auc_with_enough_positives(chexnet):
    rng = np.random.default_rng(0)
    slightly = _check(chexnet, chexnet[1] + rng.normal(0, 0.02, chexnet[1].shape), "int8")
    assert slightly.passed, slightly.summary()
    badly = _check(chexnet, chexnet[1] + rng.normal(0, 1.0, chexnet[1].shape), "int8")
    assert not badly.passed
    gated = {row.label for row in badly.labels if row.gated}
    failed = {f.split(":")[0] for f in badly.failures if "AUC delta" in f and ":" in f}
    assert failed and failed <= gated | {"mean AUC delta"}
    assert all(min(r.positives, r.negatives) >= 10 for r in badly.labels if r.gated)
    # on the 75 test films most labels have < 10 positives: reported, never failed
    manifest, logits = chexnet
    test = manifest.splits == "test"
    noisy = logits + rng.normal(0, 1.0, logits.shape)
    small = check_parity(logits[test], noisy[test], manifest.targets[test], manifest.mask[test],
                         manifest.label_names, "int8")
    ungated = [r for r in small.labels if not r.gated]
    assert len(ungated) > 7 and not any(r.label in f for r in ungated for f in small.failures)


def test_int8_logits_keep_the_ranking_a_quantized_sigmoid_loses(chexnet):
    """The design reason the exported models output logits: 8 bits over [0, 1] put most rare
    findings' probabilities on a few levels; 8 bits over the logit range keep their order."""
    manifest, logits = chexnet

    def int8_round_trip(values, low, high):
        scale = (high - low) / 255
        return np.round((values - low) / scale) * scale + low

    probs = 1 / (1 + np.exp(-logits))
    quantized_sigmoid = int8_round_trip(probs, 0.0, 1.0)
    as_logits = np.log(np.clip(quantized_sigmoid, 1e-7, 1) / np.clip(1 - quantized_sigmoid, 1e-7, 1))
    sigmoid_report = _check(chexnet, as_logits, "int8")
    logit_report = _check(chexnet, int8_round_trip(logits, logits.min(), logits.max()), "int8")
    assert logit_report.passed, logit_report.summary()
    assert not sigmoid_report.passed  # the rarest finding (Hernia, 20 positives) loses its order
    worst = lambda report: max(abs(r.auc_delta) for r in report.labels)  # noqa: E731
    assert worst(sigmoid_report) > 2 * worst(logit_report)


def test_a_label_the_model_has_not_learned_is_named_not_blamed_on_quantisation(chexnet):
    """Scores that barely vary across films (a model that has not learned the label) reorder
    under any perturbation; the report says so per label instead of blaming the mode."""
    manifest, logits = chexnet
    rng = np.random.default_rng(0)
    flat = logits.copy()
    j = manifest.label_names.index("Effusion")
    flat[:, j] = -1.5 + rng.normal(0, 1e-4, len(flat))  # spans ~1e-3 logits across 621 films
    noisy = flat + rng.normal(0, 2e-3, flat.shape)  # far below any quantisation step
    report = check_parity(flat, noisy, manifest.targets, manifest.mask, manifest.label_names,
                          "dynamic")
    assert report.not_learned == ["Effusion"]
    row = report.labels[j]
    assert not row.learned and row.logit_span < 0.01
    assert not report.passed
    effusion = [f for f in report.failures if f.startswith("Effusion:")]
    assert effusion and "model has not learned Effusion" in effusion[0]
    assert f"across {len(flat)} films" in effusion[0] and "AUC delta" in effusion[0]
    # the learned labels kept their ranking under the same noise: not blamed
    assert not any(f.split(":")[0] in manifest.label_names and f.split(":")[0] != "Effusion"
                   for f in report.failures)
    assert "model has not learned Effusion" in report.summary()
    assert report.to_dict()["not_learned"] == ["Effusion"]


def test_learned_labels_are_not_flagged_and_a_flat_label_is_noted_even_when_it_passes(chexnet):
    manifest, logits = chexnet
    report = _check(chexnet, logits.copy(), "dynamic")
    assert report.not_learned == [] and all(r.logit_span > 1 for r in report.labels)
    flat = logits.copy()
    flat[:, 0] = 0.25
    same = _check((manifest, flat), flat.copy(), "dynamic")
    assert same.passed and same.not_learned == [manifest.label_names[0]]
    assert f"NOTE: model has not learned {manifest.label_names[0]}" in same.summary()
