"""Export: the app contract, every mode through the parity gate, the files an app needs, atomic
writes, and the parity / benchmark commands. The float modes on a real NIH-sample run
(``nih_run``), whose quantized modes fail their gates as they should; the quantized modes on
``phone_run``, a demo student that passes every gate (tests/conftest.py)."""

import hashlib
import json
import sys

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


def test_quantized_modes_of_a_learned_student_pass_their_gates(phone_exports, phone_run):
    run = TrainedRun.open(phone_run)
    test = run.split("test")
    reference = open_predictor(run).score(test)
    spread = reference.std(axis=0).mean()  # how far apart the films' logits are, per label
    for mode, bound in (("dynamic", 0.05), ("int8", 0.15)):
        result = phone_exports[mode]
        assert result.parity.passed and result.parity.images == len(test), result.parity.summary()
        assert result.parity.not_learned == [], result.parity.summary()
        logits = open_predictor(result.tflite, run).score(test)
        assert np.abs(logits - reference).mean() < bound * spread, mode


def test_the_weak_nih_students_int8_fails_its_gate_and_says_why(nih_run, tmp_path):
    with pytest.raises(ParityGateError, match="int8 model failed the parity gate") as failed:
        export_tflite(nih_run, "int8", tmp_path / "int8", calibration_images=32, latency_runs=1)
    report = failed.value.report
    assert not report.passed and report.failures
    # its scores barely vary between films, and the report says so per label
    assert report.not_learned and "has not learned" in str(failed.value)
    assert not (tmp_path / "int8").exists() or not any((tmp_path / "int8").iterdir())


def test_int8_file_is_a_quarter_of_float32_with_the_documented_contract(phone_exports):
    exports = phone_exports
    sizes = {mode: result.tflite.stat().st_size for mode, result in exports.items()}
    assert sizes["int8"] < 0.3 * sizes["float32"]
    assert sizes["float16"] < 0.55 * sizes["float32"]
    int8 = TFLiteModel(exports["int8"].tflite)
    (pixels,), (logits,) = int8.inputs, int8.outputs
    assert pixels["dtype"] == np.uint8 and tuple(pixels["shape"]) == (1, 64, 64, 3)
    assert pixels["quantization"] == (1.0, 0)  # the bitmap's bytes go in unchanged
    # float32 logits out, computed in int8: the last op dequantizes them (the type every app
    # runtime takes), named "logits" in the signature like every other mode
    assert logits["dtype"] == np.float32 and tuple(logits["shape"]) == (1, 6)
    assert int8.output_names == ["logits"] and int8.interpreter.get_signature_list()[
        "serving_default"]["outputs"] == ["logits"]
    source = int8.dequantized_from(logits)
    assert source["dtype"] == np.int8 and source["quantization"][0] > 0
    float32 = TFLiteModel(exports["float32"].tflite)
    assert float32.inputs[0]["dtype"] == np.float32 and float32.output_names == ["logits"]
    assert float32.dequantized_from(float32.outputs[0]) is None
    card = exports["int8"].card
    assert card["input"]["quantization"] == {"scale": 1.0, "zero_point": 0}
    assert card["output"]["dtype"] == "float32" and card["output"]["quantization"] is None
    assert card["output"]["computed_as"] == {
        "shape": [1, 6], "dtype": "int8", "quantization": {
            "scale": pytest.approx(source["quantization"][0]),
            "zero_point": source["quantization"][1]}}


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


def test_thresholds_are_youden_points_of_the_exported_model(phone_exports, phone_run):
    from tfcxr.evaluation.operating_points import youden_thresholds

    run = TrainedRun.open(phone_run)
    val = run.split("val")
    probs = open_predictor(phone_exports["dynamic"].tflite, run).probabilities(val)
    expected = youden_thresholds(val.targets, probs, val.mask, run.label_names)
    saved = json.loads((phone_exports["dynamic"].tflite.parent / "thresholds.json").read_text())
    for label, values in expected.items():
        assert saved["labels"][label]["threshold"] == pytest.approx(values["threshold"])


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


def test_parity_command_passes_and_fails_with_exit_codes(exports, nih_run, phone_exports, phone_run,
                                                        tmp_path):
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
    # the mode is read from the file's tensors, and the command's verdict is the export gate's on
    # the same (test) films, with its numbers
    int8 = phone_exports["int8"]
    result = invoke("parity", "--keras", phone_run / "best.keras", "--tflite", int8.tflite,
                    "--json")
    report = json.loads(result.output)
    assert report["passed"] and report["mode"] == "int8" and report["images"] == int8.parity.images
    assert report["mean_auc_delta"] == pytest.approx(int8.parity.mean_auc_delta)


def test_parity_refuses_a_model_of_another_input_size(exports, nih_run, tmp_path):
    inputs = keras.Input((32, 32, 3))
    other = keras.Model(inputs, keras.layers.Dense(14, name="logits")(
        keras.layers.GlobalAveragePooling2D()(inputs)))
    from tfcxr.export.convert import convert

    small = tmp_path / "small.tflite"
    small.write_bytes(convert(other, PreprocessingSpec(image_size=32), "float32"))
    result = invoke("parity", "--keras", nih_run / "best.keras", "--tflite", small, expect=1)
    assert "takes (32, 32, 3)" in result.output and "Traceback" not in result.output


def test_runtime_falls_back_to_tf_lite(phone_exports, monkeypatch):
    pixels = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3)).astype(np.uint8)
    litert = TFLiteModel(phone_exports["int8"].tflite)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails
    fallback = TFLiteModel(phone_exports["int8"].tflite)
    assert "ai_edge_litert" not in type(fallback.interpreter).__module__
    # Two interpreter builds may round an int8 kernel differently (other kernels for this CPU's
    # ISA), so the same file may differ between them by one quantisation step of the output,
    # never more: read that step from the output tensor and allow exactly it.
    step = _output_step(fallback)
    np.testing.assert_allclose(fallback.logits(pixels), litert.logits(pixels), rtol=0,
                               atol=1.001 * step)


def _output_step(model: TFLiteModel) -> float:
    """One quantisation step of the logits: the output tensor's scale, or, for a float output
    dequantised inside the model, the scale of the integer tensor of the same shape feeding it."""
    (output,) = model.outputs
    scale = output["quantization"][0]
    if scale:
        return scale
    shape = tuple(output["shape"])
    scales = [t["quantization"][0] for t in model.interpreter.get_tensor_details()
              if tuple(t["shape"]) == shape and np.issubdtype(t["dtype"], np.integer)]
    assert scales, "the int8 file has no integer logits tensor"
    return max(scales)


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
    assert [(r["name"], r["role"], r["mode"]) for r in rows] == [
        ("eeea_net_c2", "student", "int8"), ("mobilenet_v3_small", "teacher", "float32")]
    assert all(r["median_ms"] > 0 and r["p90_ms"] >= r["median_ms"] for r in rows)
    # how XNNPACK took each file: the float teacher whole; the ops it left outside, by name
    assert rows[1]["partitions"] == 1 and rows[1]["outside"] == {}
    assert rows[0]["partitions"] >= 1 and rows[0]["nodes"] > 100
    assert all(isinstance(n, int) and n > 0 for n in rows[0]["outside"].values())
    assert rows[0]["parameters"] > rows[1]["parameters"] and rows[0]["size_bytes"] < 6e6


def test_benchmark_of_a_tflite_file_prints_the_phone_command(phone_exports):
    table = invoke("benchmark", phone_exports["int8"].tflite, "--runs", 5).output
    assert "int8" in table and "x float32" in table
    assert "benchmark_model --graph=" in table
