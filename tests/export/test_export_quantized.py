"""The quantized exports (dynamic, int8) of ``phone_run``, a demo student whose every mode passes
its gate (tests/conftest.py): through the gate, the int8 contract and sizes, thresholds, the
parity command, the LiteRT fallback and benchmarking a file. In its own file so that a worker
runs it once the phone run is built (``pytest_collection_modifyitems``)."""

import json
import sys

import numpy as np
import pytest
from cli_invoke import invoke

from tfcxr.export.convert import INT8_GRAPHS
from tfcxr.runs.predictor import open_predictor
from tfcxr.runs.tflite import TFLiteModel
from tfcxr.runs.trained import TrainedRun


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


def test_int8_writes_the_first_graph_that_passes_its_gate_and_says_which(phone_exports):
    """export-tflite tries the graph XNNPACK runs whole first and falls back to HARD_SWISH only
    when that one misses the gate (on this demo student it does: three requantised tensors per
    h-swish round more); the card records every attempt and the file is the one it names."""
    graph = phone_exports["int8"].card["int8_graph"]
    tried = graph["tried"]
    assert [t["graph"] for t in tried] == list(INT8_GRAPHS)[:len(tried)]
    assert [t["passed"] for t in tried] == [False] * (len(tried) - 1) + [True]
    assert graph["written"] == tried[-1]["graph"]
    assert all(t["failures"] for t in tried[:-1]) and not tried[-1]["failures"]
    assert tried[0]["outside"] == {"QUANTIZE": 1} and tried[0]["partitions"] == 1
    written = TFLiteModel(phone_exports["int8"].tflite).delegation()
    assert written == {key: tried[-1][key] for key in written}
    if graph["written"] == "hard_swish":
        assert written["outside"]["HARD_SWISH"] == 27


def test_thresholds_are_youden_points_of_the_exported_model(phone_exports, phone_run):
    from tfcxr.evaluation.operating_points import youden_thresholds

    run = TrainedRun.open(phone_run)
    val = run.split("val")
    probs = open_predictor(phone_exports["dynamic"].tflite, run).probabilities(val)
    expected = youden_thresholds(val.targets, probs, val.mask, run.label_names)
    saved = json.loads((phone_exports["dynamic"].tflite.parent / "thresholds.json").read_text())
    for label, values in expected.items():
        assert saved["labels"][label]["threshold"] == pytest.approx(values["threshold"])


def test_parity_command_gives_the_export_gates_verdict(phone_exports, phone_run):
    # the mode is read from the file's tensors, and the command's verdict is the export gate's on
    # the same (test) films, with its numbers
    int8 = phone_exports["int8"]
    result = invoke("parity", "--keras", phone_run / "best.keras", "--tflite", int8.tflite,
                    "--json")
    report = json.loads(result.output)
    assert report["passed"] and report["mode"] == "int8" and report["images"] == int8.parity.images
    assert report["mean_auc_delta"] == pytest.approx(int8.parity.mean_auc_delta)


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


def test_benchmark_of_a_tflite_file_prints_the_phone_command(phone_exports):
    table = invoke("benchmark", phone_exports["int8"].tflite, "--runs", 5).output
    assert "int8" in table and "x float32" in table
    assert "benchmark_model --graph=" in table
