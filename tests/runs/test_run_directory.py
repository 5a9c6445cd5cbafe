"""What a finished run directory holds, read from the session's ``phone_run`` (a student-only
``tfcxr distill`` on the embedded demo, tests/conftest.py) instead of training another run."""

import json

import yaml
from cli_invoke import invoke

from tfcxr.backend import keras


def test_student_only_run_directory_holds_what_it_did(phone_run):
    run = phone_run
    for name in ("config.yaml", "labels.txt", "preprocessing.json", "manifest.csv", "metrics.csv",
                 "metrics.json", "best.keras", "last.keras", "run.json"):
        assert (run / name).is_file(), name
    assert any((run / "tensorboard").rglob("events.out.tfevents*"))
    assert not (run / "backup").exists()  # removed once the run completed
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["student"]["name"] == "eeea_net_c2"
    epochs = saved["student"]["train"]["epochs"]  # the epochs asked for, all of them run
    assert epochs > 1
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["mode"] == "student_only" and info["epochs"] == epochs
    metrics = json.loads((run / "metrics.json").read_text())
    assert [m["epoch"] for m in metrics] == list(range(epochs))
    assert {"loss", "hard_loss", "val_auc", "val_auc_Cardiomegaly"} <= set(metrics[0])
    assert info["best_val_auc"] == max(m["val_auc"] for m in metrics)
    model = keras.models.load_model(run / "best.keras")
    assert model.output_shape == (None, 6)
    # a finished run is never overwritten (nothing is written: the session run's files are
    # hashed and checked when the session ends)
    result = invoke("distill", "--student-only", "--config", run.parent / "config.yaml",
                    "--out", run, expect=1)
    assert "already complete" in result.output
