"""Runs end to end through the CLI: the three teacher modes, resume (what a finished run directory
holds: tests/runs/test_run_directory.py, on the session's phone run)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from cli_invoke import invoke
from click.testing import CliRunner
from tiny_runs import tiny_demo_config

from tfcxr.cli import main
from tfcxr.runs.layout import trained_model
from tfcxr.runs.loading import load_keras_model


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    """A demo dataset of 40 patients at 32 px and a config that trains in seconds."""
    return tiny_demo_config(
        tmp_path_factory.mktemp("tiny"), patients=40, seed=2, data={"cache": True},
        teacher={"name": "mobilenet_v3_small", "train": {"epochs": 1, "backup_every_steps": 2}},
        student={"name": "mobilenet_v3_small", "train": {"epochs": 2, "backup_every_steps": 2}},
        distill={"alpha": 0.5, "temperature": 2.0})


def test_teacher_online_and_offline_distillation(tiny_config, tmp_path):
    invoke("train-teacher", "--config", tiny_config, "--out", tmp_path / "teacher", "-q")
    teacher = trained_model(tmp_path / "teacher")
    invoke("distill", "--teacher-weights", teacher, "--config", tiny_config, "--epochs", 1,
           "--out", tmp_path / "online", "-q")
    online = json.loads((tmp_path / "online" / "run.json").read_text())
    assert online["mode"] == "online" and online["status"] == "complete"
    soft = json.loads((tmp_path / "online" / "metrics.json").read_text())[0]["soft_loss"]
    assert soft > 0

    invoke("teacher-predict", "--teacher-weights", teacher, "--config", tiny_config,
           "--out", tmp_path / "logits.csv")
    invoke("distill", "--teacher-predictions", tmp_path / "logits.csv", "--config", tiny_config,
           "--epochs", 1, "--out", tmp_path / "offline", "-q")
    assert json.loads((tmp_path / "offline" / "run.json").read_text())["mode"] == "offline"

    # distill.precompute_teacher scores the films with the teacher inside the student's process
    # (building it draws from the global generator); the student must still be the one the
    # logits file trains: same logits, same weights.
    config = yaml.safe_load(tiny_config.read_text())
    config.setdefault("distill", {})["precompute_teacher"] = True
    (tmp_path / "precompute.yaml").write_text(yaml.safe_dump(config))
    invoke("distill", "--teacher-weights", teacher, "--config", tmp_path / "precompute.yaml",
           "--epochs", 1, "--out", tmp_path / "scored", "-q")
    scored = tmp_path / "scored"
    assert json.loads((scored / "run.json").read_text())["mode"] == "offline"
    assert (scored / "teacher_logits.csv").read_text() == (tmp_path / "logits.csv").read_text()
    weights = [load_keras_model(run / "last.keras").get_weights()
               for run in (scored, tmp_path / "offline")]
    assert all(np.array_equal(a, b) for a, b in zip(*weights))


def test_offline_from_real_chexnet_probabilities(chexnet_offline_run):
    """``distill --teacher-predictions`` with the NIH sample's CheXNet probabilities (the
    session's run, built by that command: tests/conftest.py)."""
    info = json.loads((chexnet_offline_run / "run.json").read_text())
    assert info["mode"] == "offline" and info["status"] == "complete"
    metrics = json.loads((chexnet_offline_run / "metrics.json").read_text())
    assert np.isfinite(metrics[0]["soft_loss"]) and metrics[0]["soft_loss"] > 0


def test_missing_teacher_prediction_is_named(tiny_config, tmp_path):
    bad = tmp_path / "p.csv"
    bad.write_text("image_id,prob_Cardiomegaly\nx.png,0.5\n")
    result = CliRunner().invoke(main, ["distill", "--teacher-predictions", str(bad), "--config",
                                       str(tiny_config), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "p.csv: no logit_Effusion or prob_Effusion column" in result.output


def test_killed_run_resumes_with_the_same_command(tiny_config, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "tfcxr.cli", "distill", "--student-only", "--config",
               str(tiny_config), "--epochs", "4", "--out", str(run), "--quiet"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    # Wait until epoch 1 is logged and a backup was recorded after it (inside epoch 2): a backup
    # from the middle of epoch 1 (5 steps, one every 2) would rightly resume epoch 1 at step 4.
    # "Recorded" is the checkpoint state file, which names the newest backup and is written
    # only after that backup's files: a new ckpt-N.index alone (killed before the state file
    # moved on) still resumes from the previous backup, in epoch 1 (seen once under load).
    while time.time() < deadline:
        metrics = run / "metrics.csv"
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2 and any(
                state.stat().st_mtime > metrics.stat().st_mtime
                for state in (run / "backup").rglob("checkpoint")):
            break
        if first.poll() is not None:
            pytest.fail("the run finished before it could be killed:\n" + first.stdout.read().decode())
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert json.loads((run / "run.json").read_text())["status"] == "running"

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Epoch 1/4" not in second.stdout  # continued, did not start over
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["resumed"] is True
    assert [m["epoch"] for m in json.loads((run / "metrics.json").read_text())] == [0, 1, 2, 3]
    assert not (run / "backup").exists()
