"""Keras -> TFLite bytes, for one export mode.

A float network is first wrapped as an app model (pixels in, logits out; ``app_model``). A QAT
model from ``tfcxr qat`` already is one: its input quantiser is pinned to [0, 255] before
conversion, so its uint8 input has scale 1 and zero point 0 like the post-training int8 model's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfcxr.backend import keras, tf
from tfcxr.errors import TfcxrError
from tfcxr.explain.device import GRADCAM_OUTPUT, with_gradcam_output
from tfcxr.export.modes import get_mode
from tfcxr.models.app_model import (INPUT_NAME, OUTPUT_NAME, PIXEL_RANGE, PixelNormalization,
                                    build_app_model, is_app_model)
from tfcxr.models.folding import fold_batch_norms
from tfcxr.models.layers import int8_graph
from tfcxr.preprocessing import PreprocessingSpec
from tfcxr.quantize import is_qat_model


class ConversionError(TfcxrError):
    pass


def representative_dataset(pixels: np.ndarray):
    """The converter's calibration callable: one float32 [1, S, S, C] image per step."""
    def generate():
        for image in pixels:
            yield [np.asarray(image[None], np.float32)]
    return generate


def pin_input_quantizer(qat_model: keras.Model) -> None:
    """Set the QAT model's input range to exactly [0, 255] (tfmot learns it from the data)."""
    (quantize_layer,) = [layer for layer in qat_model.layers
                         if type(layer).__name__ == "QuantizeLayer"]
    for weight in quantize_layer.weights:
        if weight.name.endswith("_min:0"):
            weight.assign(PIXEL_RANGE[0])
        elif weight.name.endswith("_max:0"):
            weight.assign(PIXEL_RANGE[1])


def to_app_model(model: keras.Model, spec: PreprocessingSpec, integer_io: bool,
                 gradcam: bool = False, model_name: str | None = None, *,
                 fold_depthwise: bool | None = None) -> keras.Model:
    """The model to convert: pixels in, ``logits`` out (and ``gradcam`` maps with ``gradcam``).
    A float network's depthwise BNs are folded with ``fold_depthwise`` (default: ``integer_io``)."""
    if is_qat_model(model):
        if not is_app_model(model):
            raise ConversionError(f"{model.name}: a QAT model must be built on the app model "
                                  "(tfcxr qat does this) to take pixels")
        pin_input_quantizer(model)
        return with_gradcam_output(model, model_name=model_name) if gradcam else model
    if is_app_model(model):
        return with_gradcam_output(model, model_name=model_name) if gradcam else model
    if integer_io if fold_depthwise is None else fold_depthwise:  # lets int8_graph() split them
        model = fold_batch_norms(model)
    if gradcam:
        return with_gradcam_output(
            model, model_name=model_name, input_name=INPUT_NAME, input_shape=spec.input_shape,
            preprocessing=PixelNormalization(spec.mean, spec.std, integer_io, name="normalize"))
    return build_app_model(model, spec, pin_input_range=integer_io)


def with_named_outputs(app: keras.Model) -> keras.Model:
    """``app`` with its outputs named ``logits`` (and ``gradcam``) in the file's signature, in that
    order, whatever its last layers are called (a QAT model's is tfmot's ``quant_logits``)."""
    outputs = app.outputs
    if len(outputs) == 1:  # a one-entry dict keeps the layer's name: rename by an identity
        if app.output_names == [OUTPUT_NAME]:
            return app
        logits = keras.layers.Activation("linear", name=OUTPUT_NAME)(outputs[0])
        return keras.Model(app.inputs, logits, name=app.name)
    names = (OUTPUT_NAME, GRADCAM_OUTPUT)[:len(outputs)]
    return keras.Model(app.inputs, dict(zip(names, outputs)), name=app.name)


def tflite_converter(app: keras.Model) -> tf.lite.TFLiteConverter:
    """A converter for ``app``'s inference graph, traced once.

    ``TFLiteConverter.from_keras_model`` first writes the model as a Keras SavedModel, tracing
    every layer's call functions one by one, then loads it back: three quarters of a student's
    conversion time (EEEA-Net-C2: 25-30 s of 30-40 s). Tracing ``app(pixels, training=False)``
    once, with the variables held by a plain module, gives the same graph, the same
    ``serving_default`` signature (input ``pixels``; outputs ``logits`` [, ``gradcam``]) and the
    same numbers (``tests/export/test_convert.py``) in a quarter of the time."""
    (pixels,) = app.inputs

    @tf.function(input_signature=[tf.TensorSpec(pixels.shape, pixels.dtype, name=INPUT_NAME)])
    def serve(pixels):
        outputs = app(pixels, training=False)
        return outputs if isinstance(outputs, dict) else {OUTPUT_NAME: outputs}

    holder = tf.Module()
    holder.app_variables = list(app.variables)  # keeps them alive and saved with the signature
    return tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], holder)


@dataclass(frozen=True)
class Int8Graph:
    """How an int8 file is traced (``models.layers.int8_graph``)."""

    hard_swish_as_ops: bool   # h-swish as ADD/MUL/MUL rather than TFLite's HARD_SWISH
    split_depthwise: bool     # depthwise BNs folded, kernels over 25 taps split
    meaning: str


# In the order the exporter tries them: the first that passes the parity gate is written.
INT8_GRAPHS = {
    "whole": Int8Graph(True, True, "h-swish as ADD/MUL/MUL, large depthwise kernels split: "
                                   "XNNPACK runs the whole graph in int8"),
    "hard_swish": Int8Graph(False, True, "h-swish as TFLite's HARD_SWISH (XNNPACK leaves it "
                                         "outside in int8), large depthwise kernels split"),
    "unaided": Int8Graph(False, False, "the graph the converter writes unaided: HARD_SWISH, "
                                       "every depthwise kernel whole"),
}


def convert(model: keras.Model, spec: PreprocessingSpec, mode: str,
            calibration_pixels: np.ndarray | None = None, *, gradcam: bool = False,
            model_name: str | None = None, int8_graph_form: str = "whole") -> bytes:
    """The .tflite bytes of ``model`` (a network, an app model or a QAT app model) in ``mode``;
    with ``gradcam`` the file has a second output, every label's Grad-CAM map. Integer modes
    trace ``int8_graph`` (large depthwise kernels split), h-swish written as ``int8_graph_form``
    says (``INT8_GRAPHS``)."""
    export_mode = get_mode(mode)
    if export_mode.integer_io and (calibration_pixels is None or not len(calibration_pixels)):
        raise ConversionError("int8 export needs calibration images (representative data)")
    if int8_graph_form not in INT8_GRAPHS:
        raise ConversionError(f"unknown int8 graph {int8_graph_form!r}; one of {', '.join(INT8_GRAPHS)}")
    graph = INT8_GRAPHS[int8_graph_form]
    app = with_named_outputs(to_app_model(model, spec, export_mode.integer_io, gradcam, model_name,
                                          fold_depthwise=export_mode.integer_io and graph.split_depthwise))
    with int8_graph(export_mode.integer_io, hard_swish_as_ops=graph.hard_swish_as_ops,
                    split_depthwise=graph.split_depthwise):
        converter = tflite_converter(app)
    representative = (representative_dataset(calibration_pixels)
                      if calibration_pixels is not None and export_mode.integer_io else None)
    export_mode.configure(converter, representative)
    try:
        return converter.convert()
    except Exception as e:  # the converter raises many types, all with a usable message
        raise ConversionError(f"TFLite conversion ({mode}) of {model.name} failed: "
                              f"{str(e).strip().splitlines()[0]}") from e
