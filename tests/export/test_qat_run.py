"""``tfcxr qat``: QAT fine-tuning of a run's student with its distillation loss, then int8 export
from the QAT model."""

import json

import numpy as np
from cli_invoke import invoke

from tfcxr import models
from tfcxr.models.app_model import build_app_model
from tfcxr.export.exporter import export_tflite
from tfcxr.runs.tflite import TFLiteModel
from tfcxr.preprocessing import PreprocessingSpec
from tfcxr.quantize import calibrate_ranges, quantize_model


def _ranges(model):
    return {v.name: float(v.numpy()) for v in model.weights
            if v.name.endswith(("post_activation_min:0", "post_activation_max:0"))}


def test_calibration_replaces_the_initial_ranges_and_nothing_else():
    spec = PreprocessingSpec(image_size=32)
    qat = quantize_model(build_app_model(
        models.create("eeea_net_c2", num_classes=3, input_shape=spec.input_shape), spec))
    before = _ranges(qat)
    assert set(before.values()) == {-6.0, 6.0}  # tfmot's starting guess
    others = {v.name: v.numpy().copy() for v in qat.weights
              if not v.name.endswith(("_min:0", "_max:0"))}
    pixels = np.random.default_rng(0).integers(0, 256, (4, 8, 32, 32, 3)).astype(np.float32)
    assert calibrate_ranges(qat, list(pixels)) == 4
    after = _ranges(qat)
    assert sum(after[k] != before[k] for k in before) > 0.9 * len(before)
    for v in qat.weights:  # BatchNorm statistics and kernels are untouched
        if v.name in others:
            np.testing.assert_array_equal(v.numpy(), others[v.name])


def test_qat_keeps_the_distillation_loss_and_feeds_the_int8_export(chexnet_offline_run, copy_run,
                                                                   tmp_path):
    # QAT writes RUN/qat, which switches later int8 exports of RUN to it: a copy. The run is the
    # session's quickest offline one (MobileNetV3-Small, 32 px, from the real CheXNet
    # probabilities): QAT's cost is mostly tfmot wrapping and tracing the network, 86 s here for
    # the EEEA-Net-C2 of the session's NIH run, 39 s for MobileNetV3-Small at 32 px.
    run = copy_run(chexnet_offline_run)
    invoke("qat", "--run", run, "--epochs", 1, "--quiet")
    qat = run / "qat"
    info = json.loads((qat / "run.json").read_text())
    assert info["status"] == "complete" and info["kind"] == "qat" and info["mode"] == "offline"
    assert (qat / "best.h5").is_file() and (qat / "last.h5").is_file()
    metrics = json.loads((qat / "metrics.json").read_text())
    assert metrics[0]["soft_loss"] > 0 and np.isfinite(metrics[0]["val_auc"])  # teacher still in the loss
    # --force: what is checked here is the file QAT makes, whatever the gate says of a student
    # trained for one epoch; a learned student's int8 passes without it
    # (tests/export/test_app_runtimes.py)
    result = export_tflite(run, "int8", tmp_path / "int8", force=True, calibration_images=32,
                           latency_runs=3)
    assert result.card["model"]["source"].startswith("QAT fine-tuned model")
    model = TFLiteModel(result.tflite)
    assert model.inputs[0]["quantization"] == (1.0, 0) and model.outputs[0]["dtype"] == np.float32
    assert model.dequantized_from(model.outputs[0])["dtype"] == np.int8  # computed in int8
    # named like every other mode's output (tfmot calls the wrapped layer quant_logits)
    assert model.interpreter.get_signature_list()["serving_default"]["outputs"] == ["logits"]
    # logits of the int8 model follow the QAT Keras model's
    assert result.parity.max_abs_prob_diff < 0.05
