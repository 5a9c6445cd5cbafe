"""The README's main job and every command it lists after it, end to end on the demo data, at a
reduced budget (a smaller demo, 32 px, few epochs): distill with the DenseNet161 teacher from the
shipped demo config, then qat, export-tflite --mode all, explain, evaluate, compare and benchmark
on its output, each step's output checked, so the first hour of a new user can never silently break.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from cli_invoke import invoke
from tfcxr.config import config_path, load_yaml
from tfcxr.data.demo import DemoSpec, write_demo_dataset
from tfcxr.metrics import per_label_auc
from tfcxr.runs.predictor import open_predictor
from tfcxr.runs.trained import TrainedRun

MODES = ("float32", "float16", "dynamic", "int8")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    """``tfcxr distill --teacher densenet161`` with the shipped demo config, smaller."""
    base = tmp_path_factory.mktemp("main-job")
    demo = write_demo_dataset(base / "demo", DemoSpec(patients=140, image_size=64, seed=0))
    config = load_yaml(config_path("demo"))
    config["data"].update(root=str(demo), image_size=32)
    config["teacher"]["train"].update(epochs=2, backup_every_steps=100)
    # 8 epochs instead of 40, at 2e-3 instead of the demo's 1e-3 (faster for so short a schedule);
    # the student still ends near chance on the test films at 32 px, which no assertion needs.
    config["student"]["train"].update(epochs=8, learning_rate=2e-3, backup_every_steps=1000)
    (base / "demo-small.yaml").write_text(yaml.safe_dump(config))
    run = base / "runs" / "distill-densenet161-eeea_net_c2-demo"
    result = invoke("distill", "--teacher", "densenet161", "--config", base / "demo-small.yaml",
                    "--out", run, "--quiet")
    assert "training densenet161 first" in result.output and "student eeea_net_c2" in result.output
    return run


def test_the_main_job_writes_a_teacher_and_a_distilled_student(main_job):
    run = TrainedRun.open(main_job)
    teacher = TrainedRun.open(main_job / "teacher")
    assert run.info["mode"] == "offline" and run.info["teacher_model"].endswith("best.keras")
    assert (main_job / "teacher_logits.csv").is_file()  # the teacher scored each film once
    assert teacher.model_name == "densenet161" and run.model_name == "eeea_net_c2"
    for trained in (run, teacher):
        assert trained.info["best_val_auc"] > 0.5 and trained.model_path.is_file()


def test_qat_then_export_all_writes_each_mode_through_its_gate_or_says_why(main_job):
    # README: `tfcxr qat` (here 1 epoch instead of the config's 2), then `export-tflite --mode all`,
    # whose int8 starts from the QAT model.
    invoke("qat", "--run", main_job, "--epochs", "1", "--quiet")
    assert (main_job / "qat" / "best.h5").is_file()
    result = invoke("export-tflite", "--run", main_job, "--mode", "all", expect=None)
    written = []
    for mode in MODES:
        folder = main_job / "export" / mode
        tflite = folder / f"eeea_net_c2_{mode}.tflite"
        if tflite.is_file():
            parity = json.loads((folder / "parity.json").read_text())
            assert parity["passed"] and parity["images"] > 0, parity
            assert {"labels.txt", "thresholds.json", "model_card.json"} <= {p.name for p in folder.iterdir()}
            written.append(mode)
            if mode == "int8":
                card = json.loads((folder / "model_card.json").read_text())
                assert card["model"]["source"].startswith("QAT fine-tuned model"), card["model"]
        else:  # not written: the output names the mode and the gate's reason
            assert f"{mode} model failed the parity gate" in result.output, result.output
            assert "exceeds" in result.output or "has not learned" in result.output
    assert {"float32", "float16"} <= set(written), result.output
    assert (result.exit_code == 0) == (len(written) == len(MODES)), result.output


def test_explain_records_normalised_heat_maps_for_teacher_and_student(main_job, tmp_path):
    out = tmp_path / "explanations"
    invoke("explain", "--model", main_job, "--teacher", main_job / "teacher", "--split", "test",
           "--limit", "4", "--out", out)
    index = json.loads((out / "explanations.json").read_text())
    run = TrainedRun.open(main_job)
    test = run.split("test")
    truth = dict(zip(test.image_ids, test.targets))
    lit = {"teacher": [], "student": []}
    for entry in index:
        positives = truth[Path(entry["film"]).name]
        for j, label in enumerate(run.label_names):
            figure = Path(entry["figures"][label])
            assert figure.is_file() and figure.stat().st_size > 1000
            if positives[j] == 1:
                for role in lit:
                    lit[role].append(entry["heat"][role][label]["max"])
    assert lit["teacher"], "no positive film among the first 4 test films"
    # At this test's 32 px budget the models have barely learned and Grad-CAM keeps positive
    # evidence only, so whether any map of a positive film lights up depends on thread-level
    # float differences (measured: the teacher lit 1 of 10 pairs under xdist, 0 alone). What must
    # hold here: every film, label and model has a heat record of a normalised map, and a map's
    # peak is 0 (empty) or 1 (normalised). Lit maps on the full demo are measured in the README.
    for role, peaks in lit.items():
        peaks = np.array(peaks)
        assert np.isin(np.round(peaks, 6), [0.0, 1.0]).all(), (role, peaks)
    for entry in index:
        assert set(entry["heat"]) == {"teacher", "student"}
        for role in entry["heat"]:
            assert set(entry["heat"][role]) == set(run.label_names)


def test_evaluate_compare_and_benchmark_report_on_the_run(main_job, tmp_path):
    invoke("evaluate", "--model", main_job, "--bootstrap", "50", "--report", tmp_path / "report")
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    run = TrainedRun.open(main_job)
    test = run.split("test")
    assert report["n_images"] == len(test) and len(report["rows"]) == 6
    # the student's own test AUC, computed here: at this budget it is near chance (0.43-0.47
    # measured), so the check is that evaluate reports it, not that it is high
    expected = per_label_auc(test.targets, open_predictor(run).probabilities(test), test.mask,
                             run.label_names)
    assert report["mean_auc"]["estimate"] == pytest.approx(expected["auc"], abs=1e-6)
    mean = report["mean_auc"]
    assert mean["low"] <= mean["estimate"] <= mean["high"]
    result = invoke("compare", main_job / "teacher", main_job, "--bootstrap", "50",
                    "--out", tmp_path / "comparison")
    comparison = (tmp_path / "comparison" / "comparison.md").read_text()
    assert "teacher" in comparison and "AUC" in result.output + comparison
    # one mode at this budget (tests/export/ time int8 and the stock model in float32)
    bench = invoke("benchmark", main_job, "--mode", "float32", "--threads", "1", "--runs", "5",
                   "--json")
    rows = json.loads(bench.output[bench.output.index("["):])
    assert any("densenet161" in json.dumps(row) for row in rows)
    assert sum(1 for row in rows if "eeea_net_c2" in json.dumps(row)) >= 1
