"""Replay a model's graph on new inputs: flatten nested models, unwrap QAT, prepend a step.

tf-explain and ``tfcxr.explain.device`` address the Grad-CAM layer by name in one flat functional
graph. Models that users hand in are not always flat: a backbone may sit inside the model as one
``Functional`` layer (``Graph disconnected`` / ``No such layer`` in tf-explain), the model may be
a QAT model from ``tfcxr.quantize.quantize_model`` (tf-explain fails on its wrappers), or an
exporter may put a preprocessing step in front of it. ``replay`` walks the graph node by node and
calls a copy of each layer (same config and weights) on new tensors, descending into nested
functional models, so every layer ends up addressable by its own name in one graph. Copies, not
the layers themselves: a reused layer gains a second call site in the caller's model, which
changes how that model is treated later (``quantize_model`` stops folding a BatchNormalization
that has two callers), and the result is a snapshot that later training does not change.

The float twin of a QAT model (``float_twin``) is the same graph with every ``QuantizeWrapper``
replaced by a fresh copy of the layer it wraps, holding the wrapper's float variables (the
weights QAT trains and the TFLite converter quantizes), and ``QuantizeLayer`` dropped. It computes
what the QAT model computes without fake quantization, so its Grad-CAM differs from the int8
model's behaviour by quantization error only; gradients through fake-quant ops would be
straight-through estimates anyway.
"""

from __future__ import annotations

import tensorflow_model_optimization as tfmot

from tfcxr.backend import keras, tf
from tfcxr.errors import TfcxrError
from tfcxr.quantize import is_quantized_layer, quantize_scope

_QUANTIZE_WRAPPERS = (tfmot.quantization.keras.QuantizeWrapper,)


def is_graph_model(layer) -> bool:
    """True for a functional (or built Sequential) model whose graph can be walked."""
    return isinstance(layer, keras.Model) and getattr(layer, "_is_graph_network", False)


def replay(model: keras.Model, inputs, *, unwrap_qat: bool = False,
           trace: list | None = None, _copies: dict | None = None):
    """Re-run ``model``'s graph on ``inputs`` (Keras tensors), returning its outputs.

    Nested functional models are replayed layer by layer (their layers join the caller's graph).
    ``trace`` (if given) receives ``(layer, outputs)`` for every layer in the order they run,
    inner layers first and then the nested model itself. ``unwrap_qat`` replaces QAT wrappers by
    float copies of their layers (see ``float_twin``). A layer called twice gets one copy, called
    twice.
    """
    if not is_graph_model(model):
        raise TfcxrError(f"{model.name!r} is not a functional model; Grad-CAM needs a model built "
                         "with the functional API (keras.Input -> layers -> keras.Model)")
    flat_inputs = tf.nest.flatten(inputs)
    if len(flat_inputs) != len(model.inputs):
        raise TfcxrError(f"{model.name!r} takes {len(model.inputs)} inputs, got {len(flat_inputs)}")
    tensors = {id(x): y for x, y in zip(model.inputs, flat_inputs)}
    assignments = []  # (copied variable, value): set in one batch, much faster than per layer
    copies = {} if _copies is None else _copies  # id(original layer) -> its copy

    def substitute(value):
        return tensors[id(value)] if id(value) in tensors else value

    for depth in sorted(model._nodes_by_depth, reverse=True):  # noqa: SLF001  inputs first
        for node in model._nodes_by_depth[depth]:  # noqa: SLF001
            if node.is_input:
                continue
            layer = node.layer
            args = tf.nest.map_structure(substitute, node.call_args)
            kwargs = tf.nest.map_structure(substitute, node.call_kwargs)
            if is_graph_model(layer):
                outputs = replay(layer, args, unwrap_qat=unwrap_qat, trace=trace, _copies=copies)
            elif unwrap_qat and type(layer).__name__ == "QuantizeLayer":
                outputs = args[0]
            elif id(layer) in copies:
                layer = copies[id(layer)]
                outputs = layer(*args, **kwargs)
            else:
                unwrap = unwrap_qat and isinstance(layer, _QUANTIZE_WRAPPERS)
                original, (layer, values) = layer, (_float_copy if unwrap else _copy)(layer)
                copies[id(original)] = layer
                outputs = layer(*args, **kwargs)
                if len(layer.weights) != len(values):
                    raise TfcxrError(f"copy of layer {layer.name!r} has {len(layer.weights)} "
                                     f"weights, the original {len(values)}")
                assignments.extend(zip(layer.weights, values))
            for keras_tensor, new in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(outputs)):
                tensors[id(keras_tensor)] = new
            if trace is not None:
                trace.append((layer, outputs))
    keras.backend.batch_set_value(assignments)
    result = [tensors[id(x)] for x in model.outputs]
    return result[0] if len(result) == 1 else result


def new_graph(model: keras.Model, *, preprocessing=None, input_shape=None, input_name=None,
              unwrap_qat: bool = False):
    """Replay ``model`` on a new input: ``(inputs, outputs, trace)`` (see ``replay``).

    ``preprocessing`` is a Keras layer or a callable on Keras tensors (e.g. pixels in 0..255 to
    the model's normalised input); ``input_shape`` and ``input_name`` describe the new input
    (default: the model's). The graph holds copies of ``model``'s layers with their current
    weights; ``unwrap_qat`` turns QAT wrappers into the float layers they wrap.
    """
    if len(model.inputs) != 1:
        raise TfcxrError(f"{model.name!r} has {len(model.inputs)} inputs; expected one image input")
    shape = tuple(model.inputs[0].shape[1:]) if input_shape is None else tuple(input_shape)
    inputs = keras.Input(shape=shape, name=input_name or model.inputs[0].name.split(":")[0])
    x = inputs if preprocessing is None else preprocessing(inputs)
    trace = []
    outputs = replay(model, x, unwrap_qat=unwrap_qat, trace=trace)
    return inputs, outputs, trace


def flat_model(model: keras.Model, **kwargs) -> keras.Model:
    """One flat functional model computing ``model``; ``kwargs`` as for ``new_graph``."""
    inputs, outputs, _ = new_graph(model, **kwargs)
    return build_model(inputs, outputs, name=model.name)


def float_twin(model: keras.Model) -> keras.Model:
    """The float model inside a QAT model: same graph and layer names, no fake quantization."""
    return flat_model(model, unwrap_qat=True)


def quantized_layer_as_float(layer):
    """A QAT wrapper's float layer (weights set), None for a ``QuantizeLayer``, else ``layer``."""
    if type(layer).__name__ == "QuantizeLayer":
        return None
    if not isinstance(layer, _QUANTIZE_WRAPPERS):
        return layer
    copy, values = _float_copy(layer)
    copy.set_weights(values)
    return copy


def build_model(inputs, outputs, name: str) -> keras.Model:
    """``keras.Model(inputs, outputs)``, with a usable message for clashing layer names."""
    try:
        return keras.Model(inputs, outputs, name=name)
    except ValueError as e:
        if "should be unique" not in str(e):
            raise
        raise TfcxrError(f"cannot flatten {name!r}: {e} A nested model shares layer names with "
                         "its outer model; rename one of them") from None


def _copy(layer):
    """A fresh copy of ``layer`` (same config) and the weight values to give it once built."""
    with quantize_scope():  # QAT wrappers and their QuantizeConfigs deserialize inside it
        copy = type(layer).from_config(layer.get_config())
    return copy, layer.get_weights()


def _float_copy(wrapper):
    """A fresh copy of the layer inside a QAT wrapper and the wrapper's float variables for it.

    tfmot swaps the wrapped layer's kernels for fake-quantized tensors and tracks the variables
    on the wrapper, so they are matched by their own name (``kernel:0``; the quantizers' are
    ``kernel_min:0``, ``optimizer_step:0``...) among the wrapper's variables; it
    also replaces the layer's activation (``QuantizeAwareActivation`` around the original, or
    ``NoOpActivation`` for a linear one), which is undone here.
    """
    inner = wrapper.layer
    config = inner.get_config()
    if "activation" in config:
        config["activation"] = _float_activation(config["activation"])
    copy = type(inner).from_config(config)
    copy.build(wrapper.input_shape)
    values = []
    for weight in copy.weights:
        wanted = weight.name.split("/")[-1]  # "kernel:0"; quantizer variables are "kernel_min:0"...
        found = [v for v in wrapper.weights if v.name.split("/")[-1] == wanted]
        if len(found) != 1:
            raise TfcxrError(f"cannot recover the float weight {wanted!r} from QAT layer "
                             f"{wrapper.name!r} ({len(found)} candidates)")
        values.append(found[0].numpy())
    return copy, values


def _float_activation(activation):
    """The serialized activation a QAT wrapper replaced (see ``_float_copy``)."""
    def named(name):
        return isinstance(activation, dict) and activation.get("class_name") == name

    while named("QuantizeAwareActivation"):
        activation = activation["config"]["activation"]
    if named("NoOpActivation"):
        return "linear"  # tfmot's marker for "linear, not quantized"
    return activation
