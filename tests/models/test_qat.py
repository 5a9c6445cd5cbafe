"""Quantization-aware training of every registered student: quantize, train, save, reload, export."""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from tfcxr import models
from tfcxr.backend import keras, tf
from tfcxr.errors import TfcxrError
from tfcxr.export.convert import tflite_converter
from tfcxr.models.macs import count_macs
from tfcxr.models.layers import SqueezeExcite
from tfcxr.models.ofa_mobilenet import MBBlock, OFAArch, build_ofa_mobilenet
from tfcxr.quantize import calibrate_ranges, load_qat_model, quantize_model, save_qat_model

SIZE = 32
NUM_CLASSES = 14


def _batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, SIZE, SIZE, 3)).astype(np.float32)
    y = (rng.random((n, NUM_CLASSES)) < 0.3).astype(np.float32)
    return x, y


@pytest.fixture(scope="module", params=models.list_models(role="student"))
def qat_student(request):
    model = models.create(request.param, num_classes=NUM_CLASSES, input_shape=(SIZE, SIZE, 3))
    return model, quantize_model(model)


def test_every_layer_is_quantized(qat_student):
    float_model, qat = qat_student
    unwrapped = [layer.name for layer in qat.layers
                 if not isinstance(layer, (keras.layers.InputLayer, keras.layers.Wrapper))
                 and type(layer).__name__ != "QuantizeLayer"]
    assert not unwrapped
    assert count_macs(qat) == count_macs(float_model)  # MACs are counted through the wrappers


def test_fit_steps_change_weights_without_nan(qat_student):
    float_model, qat = qat_student
    float_before = [w.copy() for w in float_model.get_weights()]
    # Eager steps: tracing the fake-quant graph for two batches costs more than running them.
    qat.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True,
                loss=keras.losses.BinaryCrossentropy(from_logits=True))
    before = [w.numpy().copy() for w in qat.trainable_weights]
    x, y = _batch()
    history = qat.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    changed = sum(not np.array_equal(b, w.numpy()) for b, w in zip(before, qat.trainable_weights))
    assert changed > len(before) // 2
    assert np.isfinite(qat.predict(x, verbose=0)).all()
    # The QAT copy trains its own weights; the float model is untouched.
    assert all(np.array_equal(a, b) for a, b in zip(float_before, float_model.get_weights()))


def test_h5_save_and_reload(qat_student, tmp_path):
    _, qat = qat_student
    x, _ = _batch(2, seed=1)
    path = save_qat_model(qat, tmp_path / "qat.h5")
    restored = load_qat_model(path)
    np.testing.assert_allclose(restored(x, training=False).numpy(), qat(x, training=False).numpy(),
                               rtol=1e-6, atol=1e-6)


def test_keras_format_is_refused(qat_student, tmp_path):
    _, qat = qat_student
    with pytest.raises(TfcxrError, match=r"\.h5 file or a SavedModel"):
        save_qat_model(qat, tmp_path / "qat.keras")


def _tiny_qat_model():
    """Every tfcxr layer kind (strided PyTorch padding, SE, h-swish, residual) in a model small
    enough to convert in seconds, trained two steps so its quantizer ranges are real."""
    arch = OFAArch(stem=8, final_expand=32, feature_mix=64, blocks=(
        MBBlock(3, 8, 8, 1, "relu", False), MBBlock(3, 24, 16, 2, "h_swish", True),
        MBBlock(5, 48, 16, 1, "h_swish", True)))
    qat = quantize_model(build_ofa_mobilenet(arch, NUM_CLASSES, (SIZE, SIZE, 3)))
    qat.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True,
                loss=keras.losses.BinaryCrossentropy(from_logits=True))
    x, y = _batch()
    qat.fit(x, y, batch_size=4, epochs=1, verbose=0)
    return qat, x


def test_savedmodel_save_and_reload(tmp_path):
    qat, x = _tiny_qat_model()
    restored = load_qat_model(save_qat_model(qat, tmp_path / "qat_savedmodel"))
    np.testing.assert_allclose(restored(x, training=False).numpy(), qat(x, training=False).numpy(),
                               rtol=1e-6, atol=1e-6)


def test_qat_model_converts_to_full_int8_tflite():
    # An untrained QAT model still has its initial quantizer ranges (a degenerate [0, 0] at the
    # input), which the converter accepts but XNNPACK then refuses: train before exporting.
    qat, x = _tiny_qat_model()
    converter = tflite_converter(qat)  # the exporter's converter (one trace, no SavedModel)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[i:i + 1]] for i in range(len(x)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()  # with the default XNNPACK delegate
    ops = {op["op_name"] for op in interpreter._get_ops_details()}  # noqa: SLF001
    assert {"HARD_SWISH", "DEPTHWISE_CONV_2D", "MEAN", "MUL", "PAD"} <= ops
    assert not ops & {"QUANTIZE", "DEQUANTIZE"}  # nothing fell back to float
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    scale, zero = inp["quantization"]
    interpreter.set_tensor(inp["index"],
                           np.clip(np.round(x[:1] / scale + zero), -128, 127).astype(np.int8))
    interpreter.invoke()
    out_scale, out_zero = out["quantization"]
    logits = (interpreter.get_tensor(out["index"]).astype(np.float32) - out_zero) * out_scale
    expected = qat(x[:1], training=False).numpy()
    assert np.abs(logits - expected).max() < 0.1 * max(1.0, np.abs(expected).max())


def test_squeeze_excite_fake_quantizes_its_gate():
    qat, x = _tiny_qat_model()
    calibrate_ranges(qat, [x] * 16)  # decay 0.5: 16 batches leave 6 / 2**16 of the start
    wrappers = [layer for layer in qat.layers
                if isinstance(getattr(layer, "layer", None), SqueezeExcite)]
    assert len(wrappers) == 2
    for wrapper in wrappers:
        ranges = {w.name.split("/")[-1][:-2]: float(w.numpy()) for w in wrapper.weights
                  if w.name.endswith(("_min:0", "_max:0"))}
        # From tfmot's [-6, 6] start to the gate's own range, in [0, 1]; the squeezed vector has
        # none (tfcxr.quantize.configs says why)
        assert not any(name.startswith("squeezed") for name in ranges)
        assert -1e-3 < ranges["gate_post_activation_min"] < ranges["gate_post_activation_max"] <= 1.0
    # The gate's fake-quant is in the forward pass: 3 levels over [0, 1] change the output.
    before = qat(x, training=False).numpy()
    (gate_max,) = [w for w in wrappers[0].weights if w.name.endswith("gate_post_activation_max:0")]
    gate_max.assign(100.0)
    assert np.abs(qat(x, training=False).numpy() - before).max() > 1e-3


def test_a_qat_file_from_before_the_squeeze_excite_quantizers_gets_a_clear_error(tmp_path,
                                                                                 monkeypatch):
    from tfcxr.quantize.configs import SqueezeExciteQuantizeConfig

    arch = OFAArch(stem=8, final_expand=16, feature_mix=32,
                   blocks=(MBBlock(3, 16, 8, 2, "relu", True),))
    with monkeypatch.context() as patch:  # the config as it was: no inner quantizers
        patch.setattr(SqueezeExciteQuantizeConfig, "get_activations_and_quantizers",
                      lambda self, layer: [])
        patch.setattr(SqueezeExciteQuantizeConfig, "set_quantize_activations",
                      lambda self, layer, quantize_activations: None)
        old = save_qat_model(quantize_model(build_ofa_mobilenet(arch, NUM_CLASSES, (SIZE, SIZE, 3))),
                             tmp_path / "old.h5")
    with pytest.raises(TfcxrError, match=r"old\.h5: cannot load this QAT model .*run `tfcxr qat` again"):
        load_qat_model(old)
