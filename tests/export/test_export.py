"""Export of a real NIH-sample run (``nih_run``): the app model, the float modes through the parity
gate, the files an app needs, atomic writes, the parity / benchmark commands, and its int8
refused by the gate, as it should be. The quantized modes of a student that passes every gate
are in test_export_quantized.py."""

import hashlib
import json

import numpy as np
import pytest
from cli_invoke import invoke

from tfcxr import models
from tfcxr.backend import keras
from tfcxr.errors import TfcxrError
from tfcxr.export import exporter as exporter_module
from tfcxr.export.exporter import ParityGateError, export_tflite
from tfcxr.export.metadata import packed_files, read_metadata
from tfcxr.export.modes import MODES, ParityTolerance
from tfcxr.models.app_model import build_app_model, is_app_model
from tfcxr.preprocessing import PreprocessingSpec
from tfcxr.runs.predictor import normalize, open_predictor
from tfcxr.runs.tflite import TFLiteModel
from tfcxr.runs.trained import TrainedRun


def test_app_model_takes_pixels_and_scores_like_the_network():
    spec = PreprocessingSpec(image_size=32)
    network = models.create("eeea_net_c2", num_classes=5, input_shape=spec.input_shape)
    app = build_app_model(network, spec)
    assert is_app_model(app) and not is_app_model(network)
    assert not [layer for layer in app.layers if isinstance(layer, keras.Model)]  # flat
    assert app.input.name.startswith("pixels") and app.output_shape == (None, 5)
    pixels = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    np.testing.assert_allclose(app(pixels.astype(np.float32)).numpy(),
                               network(normalize(pixels, spec)).numpy(), atol=1e-5)


@pytest.fixture(scope="module")
def exports(nih_exports):
    return nih_exports


def test_float_modes_pass_their_parity_gate(exports, nih_run, assert_parity):
    run = TrainedRun.open(nih_run)
    part = run.split("test")
    reference = open_predictor(run).score(part)
    for mode in ("float32", "float16"):
        result = exports[mode]
        assert result.parity.passed, result.parity.summary()
        assert result.parity.images == len(part) == 75
        # the same check through the test fixture, from the written file
        assert_parity(reference, open_predictor(result.tflite, run).score(part), part.targets,
                      part.mask, run.label_names, mode)
    assert exports["float32"].parity.max_abs_prob_diff < 1e-5


def test_the_weak_nih_students_int8_fails_its_gate_and_says_why(nih_run, tmp_path):
    with pytest.raises(ParityGateError, match="int8 model failed the parity gate") as failed:
        export_tflite(nih_run, "int8", tmp_path / "int8", calibration_images=32, latency_runs=1)
    report = failed.value.report
    assert not report.passed and report.failures
    # its scores barely vary between films, and the report says so per label
    assert report.not_learned and "has not learned" in str(failed.value)
    assert not (tmp_path / "int8").exists() or not any((tmp_path / "int8").iterdir())


def test_written_files_are_what_an_app_needs(exports, nih_run):
    result = exports["float16"]
    folder = result.tflite.parent
    content = result.tflite.read_bytes()
    labels = (folder / "labels.txt").read_text().split()
    assert labels == TrainedRun.open(nih_run).label_names and len(labels) == 14
    thresholds = json.loads((folder / "thresholds.json").read_text())
    assert thresholds["method"] == "youden_j" and thresholds["split"] == "val"
    assert set(thresholds["labels"]) == set(labels)
    assert all(0 < v["threshold"] < 1 for v in thresholds["labels"].values())
    card = json.loads((folder / "model_card.json").read_text())
    assert card["model"]["size_bytes"] == len(content)
    assert card["model"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert card["model"]["parameters"] > 4_000_000 and "float model" in card["model"]["source"]
    assert card["training"]["dataset"] == "nih" and card["latency"]["median_ms"] > 0
    assert "adb push" in card["latency"]["on_a_phone"]
    # metadata inside the model, read back
    meta = read_metadata(content)
    (pixels,), (logits,) = meta["inputs"], meta["outputs"]
    assert pixels["image_size"] == [64, 64] and pixels["color_space"] == "RGB"
    assert {f["name"] for f in logits["associated_files"]} >= {"labels.txt", "thresholds.json",
                                                              "score_calibration.txt"}
    packed = packed_files(content)
    assert packed["labels.txt"].decode().split() == labels
    assert json.loads(packed["thresholds.json"]) == thresholds
    assert packed["score_calibration.txt"].decode().splitlines() == ["1.0,1.0,0.0"] * 14


def test_a_model_failing_the_gate_is_not_written_unless_forced(nih_run, nih_exports_and_conversions,
                                                               tmp_path, monkeypatch):
    # the conversion is the float32 one already made: this test is about what gets written
    converted = nih_exports_and_conversions[1]["float32"]
    monkeypatch.setattr(exporter_module, "convert", lambda *args, **kwargs: converted)
    impossible = MODES["float32"].__class__(**{**MODES["float32"].__dict__,
                                                "tolerance": ParityTolerance(max_abs_prob=0.0)})
    monkeypatch.setitem(MODES, "float32", impossible)
    target = tmp_path / "model.tflite"
    target.write_bytes(b"the previous export")
    with pytest.raises(ParityGateError, match="max .probability difference.*exceeds"):
        export_tflite(nih_run, "float32", target, latency_runs=5)
    assert target.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]  # no side files, no temp
    result = export_tflite(nih_run, "float32", target, force=True, latency_runs=5)
    assert not result.parity.passed and target.read_bytes()[4:8] == b"TFL3"
    assert read_metadata(target.read_bytes())["name"].startswith("tfcxr eeea_net_c2")
    assert json.loads((tmp_path / "model_card.json").read_text())["parity"]["passed"] is False


def test_a_failed_conversion_leaves_the_previous_file(nih_run, tmp_path, monkeypatch):
    target = tmp_path / "model.tflite"
    target.write_bytes(b"the previous export")

    def broken(*args, **kwargs):
        raise TfcxrError("TFLite conversion failed: simulated")

    monkeypatch.setattr(exporter_module, "convert", broken)
    with pytest.raises(TfcxrError, match="simulated"):
        export_tflite(nih_run, "float32", target)
    assert target.read_bytes() == b"the previous export"


def test_parity_command_passes_and_fails_with_exit_codes(exports, nih_run, tmp_path):
    tflite = exports["float32"].tflite
    result = invoke("parity", "--keras", nih_run / "best.keras", "--tflite", tflite, "--json")
    report = json.loads(result.output)
    assert report["passed"] and report["mode"] == "float32" and len(report["labels"]) == 14
    assert set(report["labels"][0]) >= {"keras_auc", "tflite_auc", "auc_delta", "agreement"}
    # another network with the same inputs is not this model: exit 1 and say why
    other = models.create("eeea_net_c2", num_classes=14, input_shape=(64, 64, 3))
    other.save(tmp_path / "other.keras")
    result = invoke("parity", "--keras", tmp_path / "other.keras", "--tflite", tflite,
                    "--run", nih_run, expect=1)
    assert "FAIL" in result.output and "probability difference" in result.output


def test_parity_refuses_a_model_of_another_input_size(exports, nih_run, tmp_path):
    inputs = keras.Input((32, 32, 3))
    other = keras.Model(inputs, keras.layers.Dense(14, name="logits")(
        keras.layers.GlobalAveragePooling2D()(inputs)))
    from tfcxr.export.convert import convert

    small = tmp_path / "small.tflite"
    small.write_bytes(convert(other, PreprocessingSpec(image_size=32), "float32"))
    result = invoke("parity", "--keras", nih_run / "best.keras", "--tflite", small, expect=1)
    assert "takes (32, 32, 3)" in result.output and "Traceback" not in result.output


def test_export_errors_name_the_problem(tmp_path):
    result = invoke("export-tflite", "--run", tmp_path, expect=1)
    assert "not a tfcxr run directory" in result.output and "Traceback" not in result.output
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a model")
    with pytest.raises(TfcxrError, match="not a usable TFLite model"):
        TFLiteModel(garbage)


def test_benchmark_times_the_modes_beside_the_teacher(nih_run):
    # (every mode and the DenseNet161 teacher: the README's table; here one mode, a small teacher)
    args = ("benchmark", nih_run, "--mode", "int8", "--teacher", "mobilenet_v3_small", "--runs", 5)
    rows = json.loads(invoke(*args, "--json").output)
    # int8 in both graphs the exporter may write (convert.INT8_GRAPHS), the first it tries first
    assert [(r["name"], r["role"], r["mode"], r["int8_graph"]) for r in rows] == [
        ("eeea_net_c2", "student", "int8", "whole"), ("eeea_net_c2", "student", "int8", "hard_swish"),
        ("eeea_net_c2", "student", "int8", "unaided"), ("mobilenet_v3_small", "teacher", "float32", None)]
    assert all(r["median_ms"] > 0 and r["p90_ms"] >= r["median_ms"] for r in rows)
    # how XNNPACK took each file: the float teacher whole; the ops it left outside, by name
    whole, fused, unaided, teacher = rows
    assert unaided["outside"]["HARD_SWISH"] == 27 and unaided["nodes"] <= fused["nodes"]
    assert teacher["partitions"] == 1 and teacher["outside"] == {}
    assert "HARD_SWISH" not in whole["outside"] and fused["outside"]["HARD_SWISH"] == 27
    assert fused["partitions"] > whole["partitions"] and whole["nodes"] > fused["nodes"] > 100
    assert all(isinstance(n, int) and n > 0 for n in whole["outside"].values())
    assert whole["parameters"] > teacher["parameters"] and whole["size_bytes"] < 6e6
    table = invoke(*args).output
    assert " int8 hard_swish " in table and " int8 " in table
