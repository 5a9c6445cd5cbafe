"""End to end through the CLI: `tfcxr data prepare`, then a student trained from the prepared
films under mixed_bfloat16 (XLA is tested in test_precision); the run says what it trains on and saves a float32 model."""

import json

import pytest
import yaml

from cli_invoke import invoke
from tfcxr.backend import keras
from tfcxr.data.demo import DemoSpec, write_demo_dataset
from tfcxr.models.precision import is_mixed


@pytest.mark.slow
def test_prepare_then_train_mixed_bfloat16(tmp_path):
    demo = write_demo_dataset(tmp_path / "demo", DemoSpec(patients=30, image_size=48, seed=3))
    prepared = tmp_path / "prepared"
    result = invoke("data", "prepare", "--dataset", "nih", "--root", demo, "-o", "val_fraction=0.25",
                    "--out", prepared, "--size", 32, "--shard-films", 16)
    assert "prepared" in result.output and (prepared / "prepared.json").is_file()
    info = json.loads((prepared / "prepared.json").read_text())
    assert info["status"] == "complete" and info["depth"] == 8 and info["size"] == 32
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"dataset": "demo", "image_size": 32, "batch_size": 8},
        "student": {"name": "mobilenet_v3_small", "train": {"epochs": 1}}}))
    run = tmp_path / "run"
    result = invoke("distill", "--student-only", "--config", config, "--prepared", prepared,
                    "--precision", "mixed_bfloat16", "--out", run, "--quiet")
    assert "training on /device:CPU:0" in result.output and "precision mixed_bfloat16" in result.output
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["precision"] == "mixed_bfloat16" and saved["jit_compile"] is False
    assert saved["data"]["prepared"] == str(prepared.resolve()) and saved["data"]["dataset"] == "nih"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics[0]["loss"] == metrics[0]["loss"]  # finite, not NaN
    model = keras.models.load_model(run / "last.keras")
    assert not is_mixed(model) and model.output_shape == (None, 14)
    from tfcxr.runs.trained import TrainedRun

    assert TrainedRun.open(run).split("val").prepared == prepared.resolve()  # evaluation reads it too
