"""The converter traces the app model once (``tflite_converter``) instead of going through
``TFLiteConverter.from_keras_model``'s Keras SavedModel: the file must be the same model, the
same signature and the same numbers, in float and in int8, with and without the Grad-CAM output."""

import numpy as np
import pytest

from tfcxr.backend import keras, tf
from tfcxr.export.convert import (ConversionError, convert, representative_dataset, to_app_model,
                                  with_named_outputs)
from tfcxr.export.modes import get_mode
from tfcxr.models import create
from tfcxr.models.layers import int8_graph
from tfcxr.preprocessing import PreprocessingSpec
from tfcxr.runs.tflite import TFLiteModel

SIZE = 32


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).integers(0, 256, (6, SIZE, SIZE, 3)).astype(np.uint8)


def _through_keras_saved_model(network, name, spec, mode, pixels, gradcam):
    """What the converter did before: from_keras_model (writes and reloads a Keras SavedModel)."""
    export_mode = get_mode(mode)
    app = with_named_outputs(to_app_model(network, spec, export_mode.integer_io, gradcam, name))
    with int8_graph(export_mode.integer_io):  # from_keras_model traces when it converts
        converter = tf.lite.TFLiteConverter.from_keras_model(app)
        export_mode.configure(converter, representative_dataset(pixels) if export_mode.integer_io else None)
        return converter.convert()


@pytest.mark.parametrize("name,mode,gradcam", [("mobilenet_v3_small", "float32", False),
                                               ("mobilenet_v3_small", "int8", True)])
def test_traced_once_equals_the_keras_saved_model_path(name, mode, gradcam, pixels):
    keras.utils.set_random_seed(0)
    network = create(name, num_classes=3, input_shape=(SIZE, SIZE, 3))
    spec = PreprocessingSpec(image_size=SIZE)
    traced = TFLiteModel(convert(network, spec, mode, pixels, gradcam=gradcam,
                                 model_name=name))
    reference = TFLiteModel(_through_keras_saved_model(network, name, spec, mode, pixels, gradcam))
    assert traced.output_names == reference.output_names == (["logits", "gradcam"] if gradcam
                                                             else ["logits"])
    assert traced.interpreter.get_signature_list() == reference.interpreter.get_signature_list()
    for mine, theirs in zip(traced.interpreter.get_input_details() + traced.interpreter.get_output_details(),
                            reference.interpreter.get_input_details() + reference.interpreter.get_output_details()):
        assert (mine["dtype"], tuple(mine["shape"]), mine["quantization"]) == \
               (theirs["dtype"], tuple(theirs["shape"]), theirs["quantization"])
    np.testing.assert_array_equal(traced.logits(pixels), reference.logits(pixels))


def _op_counts(model: TFLiteModel) -> dict:
    counts = {}
    for op in model.interpreter._get_ops_details():  # noqa: SLF001
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return counts


def test_int8_is_one_xnnpack_partition_and_float_keeps_its_hard_swish():
    """int8: h-swish as ADD/MUL/MUL and 7x7 depthwise kernels as three (their BN folded first),
    so XNNPACK takes the whole graph; only the uint8 -> int8 QUANTIZE of the input stays outside.
    The "hard_swish" graph (the exporter's fallback) splits the kernels too but keeps HARD_SWISH.
    At 64 px EEEA-Net-C2's last 7x7 layer sees a 2x2 map and stays whole (see int8_graph)."""
    keras.utils.set_random_seed(0)
    size = 64
    network = create("eeea_net_c2", num_classes=3, input_shape=(size, size, 3))
    spec = PreprocessingSpec(image_size=size)
    pixels = np.random.default_rng(0).integers(0, 256, (8, size, size, 3)).astype(np.uint8)
    # BN statistics from data, as training leaves them: with the initial ones (mean 0, variance 1)
    # activations shrink block by block, the h-swish ADD's input scale falls to 1e-6 - 1e-3 of its
    # output's (x + 3 with x near 0), and XNNPACK refuses those ADDs (25 outside, 26 partitions).
    images = np.random.default_rng(1).normal(size=(8, size, size, 3)).astype(np.float32)
    for _ in range(20):
        network(images, training=True)
    int8, float32 = (TFLiteModel(convert(network, spec, mode, pixels)) for mode in ("int8", "float32"))
    fused = TFLiteModel(convert(network, spec, "int8", pixels, int8_graph_form="hard_swish"))
    unaided = _op_counts(TFLiteModel(convert(network, spec, "int8", pixels, int8_graph_form="unaided")))
    assert unaided["DEPTHWISE_CONV_2D"] == 19 and unaided["HARD_SWISH"] == 27  # the last resort
    assert int8.delegation()["partitions"] == 1 and int8.delegation()["outside"] == {"QUANTIZE": 1}
    assert float32.delegation() == {**float32.delegation(), "partitions": 1, "outside": {}}
    assert fused.delegation()["outside"] == {"HARD_SWISH": 27, "QUANTIZE": 1}
    ops8, ops32, fused_ops = _op_counts(int8), _op_counts(float32), _op_counts(fused)
    assert "HARD_SWISH" not in ops8 and ops32["HARD_SWISH"] == fused_ops["HARD_SWISH"] == 27
    assert ops32["DEPTHWISE_CONV_2D"] == 19
    assert ops8["DEPTHWISE_CONV_2D"] == fused_ops["DEPTHWISE_CONV_2D"] == 19 + 2 * 4
    assert "ADD_N" not in ops8
    with pytest.raises(ConversionError, match="unknown int8 graph 'fast'"):
        convert(network, spec, "int8", pixels, int8_graph_form="fast")
