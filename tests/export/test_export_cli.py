"""``tfcxr export-tflite`` on a real NIH-sample run: several modes in one command, each reported,
the ones that pass written, the exit code saying whether any failed; a Grad-CAM check whose
correlation is undefined reported in words."""

import json

import numpy as np
import pytest
from cli_invoke import invoke

from tfcxr.errors import TfcxrError
from tfcxr.export import exporter as exporter_module
from tfcxr.export.modes import MODES, ParityTolerance


def _impossible(mode: str):
    return MODES[mode].__class__(**{**MODES[mode].__dict__,
                                    "tolerance": ParityTolerance(max_abs_prob=0.0)})


def test_several_modes_try_every_one_and_exit_1_when_one_fails(nih_run, tmp_path, monkeypatch):
    monkeypatch.setitem(MODES, "float32", _impossible("float32"))  # the first mode fails its gate
    result = invoke("export-tflite", "--run", nih_run, "--mode", "float32", "--mode", "float16",
                    "--out", tmp_path, expect=1)
    assert "float32: NOT written" in result.output and "parity gate" in result.output
    assert "parity float16: PASS" in result.output  # tried after the failure
    assert "1 of 2 modes failed (float32); written: float16" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "float32").exists()
    assert (tmp_path / "float16" / "eeea_net_c2_float16.tflite").read_bytes()[4:8] == b"TFL3"


def test_undefined_gradcam_correlation_is_reported_in_words(nih_run, tmp_path, monkeypatch):
    # a Keras model whose every map is zero (no positive evidence), as a barely trained run has
    monkeypatch.setattr(exporter_module, "grad_cam", lambda model, inputs, labels, **kw: np.zeros(
        (len(inputs), 14, 2, 2), np.float32))
    result = invoke("export-tflite", "--run", nih_run, "--mode", "float32", "--gradcam",
                    "--out", tmp_path)
    assert "correlation undefined: 14 of 14 labels have constant maps" in result.output
    assert "Traceback" not in result.output and "wrote" in result.output

    check = json.loads((tmp_path / "model_card.json").read_text())["gradcam"]["vs_keras_grad_cam"]
    assert check["correlation_mean"] is None and check["labels_compared"] == 0


@pytest.mark.slow
def test_benchmark_times_a_stock_mobilenet_beside_and_reports_xnnpack_partitions(tmp_path):
    from tfcxr import models

    models.create("mobilenet_v3_small", num_classes=3, input_shape=(32, 32, 3)).save(
        tmp_path / "small.keras")
    rows = json.loads(invoke("benchmark", tmp_path / "small.keras", "--mode", "float32",
                             "--stock", "--runs", 5, "--threads", 1, "--json").output)
    assert [(r["role"], r["mode"]) for r in rows] == [("student", "float32"), ("stock", "float32")]
    stock = rows[1]
    assert stock["name"] == "keras.applications.MobileNetV3Large"
    assert stock["parameters"] > 2_000_000 > rows[0]["parameters"]
    # float32 graphs go to XNNPACK whole: one partition, nothing outside
    assert [(r["partitions"], r["outside"]) for r in rows] == [(1, {}), (1, {})]
    # the table (without --stock: converting the stock model once is enough for this test)
    table = invoke("benchmark", tmp_path / "small.keras", "--mode", "float32", "--runs", 5).output
    assert "partitions" in table and "outside XNNPACK" in table


def test_int8_calibrates_on_the_exporters_default_unless_told(tmp_path, monkeypatch):
    seen = []

    def record(run_dir, mode, out, **kwargs):
        seen.append(kwargs["calibration_images"])
        raise TfcxrError("recorded")

    monkeypatch.setattr(exporter_module, "export_tflite", record)
    invoke("export-tflite", "--run", tmp_path, "--mode", "int8", expect=1)
    invoke("export-tflite", "--run", tmp_path, "--mode", "int8", "--calibration-images", "64",
           expect=1)
    assert seen == [exporter_module.CALIBRATION_IMAGES, 64]
    help_text = " ".join(invoke("export-tflite", "--help").output.split())
    assert f"[default: {exporter_module.CALIBRATION_IMAGES}, or the whole train split" in help_text
