"""``tfcxr evaluate`` and ``tfcxr compare`` on a real NIH-sample run: a Keras model and its
float32 export give the same report; the comparison table sees no difference between them."""

import json

import pytest
from cli_invoke import invoke


@pytest.fixture(scope="module")
def float32_export(nih_exports):
    return nih_exports["float32"].tflite


def test_evaluate_scores_keras_and_tflite_alike(nih_run, float32_export, tmp_path):
    invoke("evaluate", "--model", nih_run, "--bootstrap", 50, "--report", tmp_path / "keras")
    out = invoke("evaluate", "--model", float32_export, "--bootstrap", 50,
                 "--report", tmp_path / "tflite").output
    assert "mean AUC" in out and "on 75 films" in out
    keras = json.loads((tmp_path / "keras" / "report.json").read_text())
    tflite = json.loads((tmp_path / "tflite" / "report.json").read_text())
    assert len(keras["rows"]) == len(tflite["rows"]) == 14
    # Same films, labels and bootstrap. (Their AUCs are not compared here: this short-trained
    # student scores films within ~1e-6 of each other for some labels, where float32's 1e-7
    # differences reorder them; the parity tests cover agreement.)
    for a, b in zip(keras["rows"], tflite["rows"]):
        assert (a["label"], a["positives"], a["negatives"]) == (b["label"], b["positives"], b["negatives"])
        assert b["auc"]["estimate"] is None or b["auc"]["low"] <= b["auc"]["estimate"] <= b["auc"]["high"]
    assert tflite["thresholds_source"] == "given"  # the exported thresholds.json
    for name in ("report.html", "report.md", "roc.png", "calibration.png"):
        assert (tmp_path / "tflite" / name).is_file()


def test_compare_puts_runs_in_one_table(nih_run, float32_export, tmp_path):
    out = invoke("compare", nih_run, float32_export, "--bootstrap", 50, "--out", tmp_path).output
    assert "eeea_net_c2_float32" in out
    table = json.loads((tmp_path / "comparison.json").read_text())
    assert (tmp_path / "comparison.md").is_file() and json.dumps(table)


def test_evaluate_explains_a_model_without_a_run(tmp_path):
    stray = tmp_path / "model.tflite"
    stray.write_bytes(b"x")
    result = invoke("evaluate", "--model", stray, expect=1)
    assert "not inside a tfcxr run and no labels.txt beside it" in result.output


def test_evaluate_on_a_dataset_read_afresh(nih_run, nih_sample, tmp_path):
    invoke("evaluate", "--model", nih_run, "--bootstrap", 20, "--report", tmp_path / "run")
    out = invoke("evaluate", "--model", nih_run, "--dataset", "nih", "--root", nih_sample,
                 "--bootstrap", 20, "--report", tmp_path / "fresh").output
    assert "on 75 films" in out
    run = json.loads((tmp_path / "run" / "report.json").read_text())
    fresh = json.loads((tmp_path / "fresh" / "report.json").read_text())
    assert [r["auc"]["estimate"] for r in run["rows"]] == [r["auc"]["estimate"] for r in fresh["rows"]]
    wrong = invoke("evaluate", "--model", nih_run, "--dataset", "demo", "--split", "all",
                   "--report", tmp_path / "demo", expect=1).output
    assert "predicts" in wrong and "Traceback" not in wrong
