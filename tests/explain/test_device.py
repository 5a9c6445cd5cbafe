"""with_gradcam_output: Grad-CAM as plain ops, equal to the GradientTape version, in TFLite."""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from cam_helpers import blob_images, blob_pixels, label_correlations, random_model, randomize

from tfcxr import models
from tfcxr.backend import keras, tf
from tfcxr.errors import TfcxrError
from tfcxr.explain.device import GradCamHead, _head_steps, _layers_between, with_gradcam_output
from tfcxr.explain.gradcam import grad_cam
from tfcxr.export.convert import tflite_converter, with_named_outputs

NUM_CLASSES = 14
SPEC = models.get_spec("mobilenet_v3_small").preprocessing  # its mean and std


def _normalized(pixels):
    return ((pixels / 255 - np.array(SPEC.mean)) / np.array(SPEC.std)).astype(np.float32)


def _random_model(name, size=64, seed=0, pixels=False, num_classes=NUM_CLASSES):
    calibration = (_normalized(blob_pixels(16, size, seed=seed + 100)) if pixels
                   else blob_images(8, size, seed=seed + 100))
    return random_model(name, num_classes, size, calibration, seed=seed)


def _assert_matches_grad_cam(model, images, **kwargs):
    device = with_gradcam_output(model, **kwargs)
    assert device.output_names == ["logits", "gradcam"]
    logits, maps = (t.numpy() for t in device(images))
    expected, expected_logits = grad_cam(model, images, "all", return_logits=True)
    assert maps.shape == expected.shape == (len(images), logits.shape[1], *maps.shape[2:])
    # float32 sums in another order (the head's matmuls vs the gradient ops): ~1e-6 relative on
    # logits up to ~10, which the maps' division by their maximum can take to ~1e-5.
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(maps, expected, atol=3e-5)
    # Not a trivial pass: most maps have a hot and a cold place.
    assert np.mean(expected.std(axis=(2, 3)) > 0.05) > 0.5
    return device


@pytest.mark.parametrize("name", models.list_models(role="student"))
def test_every_student_matches_grad_cam(name):
    _assert_matches_grad_cam(_random_model(name, size=96), blob_images(4, 96, seed=3))


def test_densenet121_teacher_matches_grad_cam():
    model = _random_model("densenet121", size=64, num_classes=4)  # 4 labels: 4 backward passes
    _assert_matches_grad_cam(model, blob_images(3, 64, seed=4))


def test_densenet161_head_is_expressed():
    # The same builder and head as DenseNet121 (relu -> pooling -> Dense), tested in full above;
    # here only the head is read, from the model's own graph (replaying 161 costs seconds).
    model = models.create("densenet161", num_classes=NUM_CLASSES, input_shape=(32, 32, 3))
    chain = _layers_between(model.get_layer("relu").output, model.output)
    steps, values = _head_steps(chain, "relu")
    assert steps == [{"op": "dense", "units": NUM_CLASSES, "use_bias": True}]
    kernel, bias = model.get_layer("logits").get_weights()
    np.testing.assert_array_equal(values[0], kernel.T)


def test_qat_model_keeps_its_own_logits(qat_student):
    x = blob_images(2, 128, seed=12)
    logits, maps = with_gradcam_output(qat_student)(x)
    np.testing.assert_array_equal(logits.numpy(), qat_student(x).numpy())  # its fake-quant head
    assert maps.shape == (2, NUM_CLASSES, 4, 4) and 0 <= maps.numpy().min() <= 1


def _normalization():
    """Pixels in 0..255 to the student's input: ``(x / 255 - mean) / std``."""
    return keras.layers.Normalization(mean=[255 * m for m in SPEC.mean],
                                      variance=[(255 * s) ** 2 for s in SPEC.std])


def _pixels_model(student):
    """The exporter's app model: pixels in 0..255 -> normalisation -> student, kept flat."""
    return with_gradcam_output(student, preprocessing=_normalization(), input_name="pixels")


def test_a_student_nested_in_an_app_model_gives_the_same_outputs(student):
    pixels = keras.Input(student.input_shape[1:], name="pixels")
    nested = keras.Model(pixels, student(_normalization()(pixels)), name="app")
    x = blob_pixels(2, student.input_shape[1], seed=13)
    expected = _pixels_model(student)(x)
    for got, want in zip(with_gradcam_output(nested)(x), expected):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)


def _tflite_outputs(content, pixels):
    interpreter = Interpreter(model_content=content)
    runner = interpreter.get_signature_runner()
    outputs = [runner(pixels=pixels[i:i + 1]) for i in range(len(pixels))]
    return interpreter, {key: np.concatenate([o[key] for o in outputs]) for key in outputs[0]}


@pytest.fixture(scope="module")
def app_model():
    """A student as the exporter ships it, and the float Keras outputs on test pixels."""
    student = _random_model("mobilenet_v3_small", size=96, seed=5, pixels=True)
    app = _pixels_model(student)
    pixels = blob_pixels(8, 96, seed=6)
    keras_logits, keras_maps = (t.numpy() for t in app(pixels))
    np.testing.assert_allclose(keras_maps, grad_cam(student, _normalized(pixels)), atol=3e-4)
    return app, pixels, keras_logits, keras_maps


def test_float32_tflite_has_builtin_ops_named_outputs_and_the_keras_maps(app_model):
    app, pixels, keras_logits, keras_maps = app_model
    content = tflite_converter(with_named_outputs(app)).convert()  # as the exporter converts
    interpreter, out = _tflite_outputs(content, pixels)
    assert interpreter.get_signature_list() == {
        "serving_default": {"inputs": ["pixels"], "outputs": ["gradcam", "logits"]}}
    # The subgraph keeps the Keras order: logits first, then the maps.
    assert [tuple(d["shape"]) for d in interpreter.get_output_details()] == [
        (1, NUM_CLASSES), (1, NUM_CLASSES, 3, 3)]
    ops = {op["op_name"] for op in interpreter._get_ops_details()}  # noqa: SLF001
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
    assert {"MEAN", "FULLY_CONNECTED", "REDUCE_MAX", "DIV", "SELECT_V2"} <= ops
    print(f"float32 TFLite vs Keras: logits {np.abs(out['logits'] - keras_logits).max():.2e}, "
          f"maps {np.abs(out['gradcam'] - keras_maps).max():.2e} (max abs difference)")
    np.testing.assert_allclose(out["logits"], keras_logits, rtol=1e-4, atol=1e-4)
    # Each map is divided by its own maximum, so where a label's positive evidence is tiny that
    # division amplifies float32 kernel differences (oneDNN vs XNNPACK, thread counts): 8.9e-5 in
    # a quiet single process, up to 3.4e-2 on a few cells under two busy xdist workers. The map
    # values are therefore held to 0.05 and their shape to the correlation below.
    np.testing.assert_allclose(out["gradcam"], keras_maps, atol=5e-2)
    correlations = label_correlations(out["gradcam"], keras_maps)
    assert np.isfinite(correlations).all() and correlations.min() >= 0.99


def test_int8_tflite_runs_and_its_head_adds_little_error(app_model):
    """Full-integer int8, as the exporter's int8 mode converts (uint8 pixels in, int8 out).

    Measured here: r = 0.54 between int8 and Keras maps (per label 0.32 to 0.7). That is the
    backbone's int8 error on random weights, which Grad-CAM's ReLU and normalisation amplify;
    the int8 head, given the int8 feature map, reproduces the float head on that same map with
    r = 0.98. So the head is asserted tightly and the end-to-end figure loosely.
    """
    app, pixels, _, keras_maps = app_model
    head = app.get_layer("gradcam_head")
    calibration = blob_pixels(16, 96, seed=9)
    converter = tflite_converter(with_named_outputs(app))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None]] for image in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type, converter.inference_output_type = tf.uint8, tf.int8
    interpreter = Interpreter(model_content=converter.convert(),
                              experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    (pooling,) = [op for op in interpreter._get_ops_details()  # noqa: SLF001
                  if op["op_name"] == "MEAN"
                  and "gradcam_head" in tensors[op["outputs"][0]]["name"]]
    feature_map = tensors[pooling["inputs"][0]]
    (maps_out,) = [d for d in interpreter.get_output_details() if len(d["shape"]) == 4]
    int8_features, int8_maps = [], []
    for image in pixels.astype(np.uint8):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        int8_features.append(_dequantize(interpreter.get_tensor(feature_map["index"]), feature_map))
        int8_maps.append(_dequantize(interpreter.get_tensor(maps_out["index"]), maps_out))
    int8_features, int8_maps = np.concatenate(int8_features), np.concatenate(int8_maps)
    assert np.isfinite(int8_maps).all() and 0.0 <= int8_maps.min() and int8_maps.max() <= 1 + 1e-6

    float_head_maps = head(tf.constant(int8_features))[1].numpy()
    head_r = np.corrcoef(int8_maps.ravel(), float_head_maps.ravel())[0, 1]
    pooled_r = np.corrcoef(int8_maps.ravel(), keras_maps.ravel())[0, 1]
    print(f"int8 maps: r = {pooled_r:.3f} vs Keras (per label min "
          f"{np.nanmin(label_correlations(int8_maps, keras_maps)):.2f}); r = {head_r:.3f} vs the "
          "float head on the int8 feature map")
    assert head_r >= 0.95
    assert pooled_r >= 0.4


def _dequantize(values, detail):
    scale, zero = detail["quantization"]
    return (values.astype(np.float32) - zero) * scale


def test_head_with_every_supported_step_matches_grad_cam():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(12, 3, strides=2, name="conv")(inputs)
    x = keras.layers.ReLU(name="features")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Dense(16, activation="relu", name="fc1")(x)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Reshape((1, 1, 16))(x)
    x = keras.layers.Conv2D(10, 1, activation="swish", name="fc2")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Activation("sigmoid")(x)
    x = keras.layers.ReLU(max_value=6.0)(keras.layers.Dense(8, name="fc3")(x))
    outputs = keras.layers.Dense(NUM_CLASSES, name="logits")(x)
    model = randomize(keras.Model(inputs, outputs, name="custom"), blob_images(8, 24))
    device = _assert_matches_grad_cam(model, blob_images(4, 24, seed=9), layer="features")
    restored = keras.Model.from_config(device.get_config())  # GradCamHead serializes
    restored.set_weights(device.get_weights())
    x = blob_images(2, 24, seed=10)
    np.testing.assert_allclose(restored(x)[1].numpy(), device(x)[1].numpy(), atol=1e-6)
    assert isinstance(restored.get_layer("gradcam_head"), GradCamHead)


def _small_model(head):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.ReLU(name="features")(keras.layers.Conv2D(8, 3, name="conv")(inputs))
    return keras.Model(inputs, head(x), name="small")


@pytest.mark.parametrize("head, message", [
    (lambda x: keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(8, 3)(x))), "global average pooling right after"),
    (lambda x: keras.layers.Dense(3, activation="tanh")(keras.layers.GlobalAveragePooling2D()(x)),
     "no derivative for the activation"),
    (lambda x: keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(
        keras.layers.MultiHeadAttention(2, 4)(*[keras.layers.Reshape((196, 8))(x)] * 2))),
     "global average pooling right after|inputs"),
])
def test_heads_it_cannot_express_are_refused(head, message):
    with pytest.raises(TfcxrError, match=message):
        with_gradcam_output(_small_model(head), layer="features")
