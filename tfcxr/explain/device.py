"""Grad-CAM as ordinary ops, so an exported TFLite model can return heat maps beside its logits.

TFLite has no automatic differentiation, but Grad-CAM needs only one gradient: that of each logit
with respect to the feature map ``A`` [N, h, w, K] of the Grad-CAM layer. When ``A`` reaches the
logits through global average pooling and then only layers that see the pooled vector ``p``
(Dense, 1x1 convolutions on the 1x1 map, BatchNormalization, element-wise activations, dropout,
flatten/reshape), the chain rule gives

    d logit_c / d A_k(i, j) = (1 / hw) * J[c, k],   J = d logits / d p   (the head's Jacobian)

the same for every position (i, j), so Grad-CAM's channel weights are ``alpha_c = J[c] / hw`` and
the map is ``ReLU(sum_k alpha_c,k A_k(i, j)) = ReLU(J . A(i, j)) / hw``: the head, linearised at
``p``, applied to each position's feature vector. ``GradCamHead`` computes exactly that, in step
with the ordinary forward pass: a Dense or 1x1 conv ``W`` maps ``p`` and every ``A(i, j)`` alike
(bias on ``p`` only), an activation ``f`` maps ``z`` to ``f(z)`` and multiplies the ``A`` path by
``f'(z)`` (written with comparisons and selects; TensorFlow's own values at the kinks), an
inference BatchNormalization scales both. The factor ``1 / hw`` cancels when each map is divided
by its maximum.

Why this order rather than composing ``J`` first (``W2 diag(f') W1``, fewer multiply-adds): every
weight then feeds a FULLY_CONNECTED in its own layout, shared with the forward pass, so the file
holds each head weight once (``J``'s products need a transposed copy: +4.9 MB float for
EEEA-Net-C2), and the int8 converter quantizes it per channel as for any Dense (it quantized
``J``'s weight-times-slope product to zeros). The cost is ``hw`` passes through the head's
matmuls: measured on one CPU thread at 224 px, +9 % latency for EEEA-Net-C2, +36 % for
MobileNetV3-Small; +10 kB. The model converts to builtin TFLite ops only, float and full int8.
Heads it cannot express (attention, a spatial layer after the Grad-CAM layer, an activation
without a derivative here) raise ``TfcxrError`` naming the layer.

``with_gradcam_output`` returns a new flat model ``[preprocessing ->] model -> [logits, gradcam]``,
with outputs named ``logits`` and ``gradcam``; its maps equal ``grad_cam(model, ..., "all")``.
"""

from __future__ import annotations

import numpy as np

from tfcxr.backend import keras, tf
from tfcxr.errors import TfcxrError
from tfcxr.explain.graph import build_model, new_graph, quantized_layer_as_float
from tfcxr.explain.gradcam import normalize_maps, resolve_layer
from tfcxr.models.layers import HardSigmoid, HardSwish, hard_sigmoid, hard_swish
from tfcxr.quantize import is_quantized_layer

LOGITS_OUTPUT = "logits"
GRADCAM_OUTPUT = "gradcam"


def _step(condition, x, value=1.0):
    """``value`` where ``condition`` holds, else 0: a SELECT, which int8 TFLite runs (a bool CAST
    it does not)."""
    return tf.where(condition, tf.constant(value, x.dtype), tf.constant(0.0, x.dtype))


def _hard_swish_slope(x):
    """d/dx x * relu6(x + 3) / 6: 0 up to -3, (2x + 3) / 6 between, 1 from 3 (TensorFlow's values
    at the kinks: its ReLU6 gradient passes on the open interval only)."""
    inside = (2.0 * x + 3.0) / 6.0
    return tf.where(x <= -3.0, tf.constant(0.0, x.dtype),
                    tf.where(x >= 3.0, tf.constant(1.0, x.dtype), inside))


# name -> (f, f'), f' as TensorFlow's own gradients compute it.
ACTIVATIONS = {
    "linear": (lambda x: x, tf.ones_like),
    "relu": (tf.nn.relu, lambda x: _step(x > 0.0, x)),
    "relu6": (tf.nn.relu6, lambda x: _step(tf.logical_and(x > 0.0, x < 6.0), x)),
    "sigmoid": (tf.sigmoid, lambda x: tf.sigmoid(x) * (1.0 - tf.sigmoid(x))),
    "swish": (lambda x: x * tf.sigmoid(x),
              lambda x: tf.sigmoid(x) * (1.0 + x * (1.0 - tf.sigmoid(x)))),
    "hard_sigmoid": (hard_sigmoid, lambda x: _step(tf.logical_and(x > -3.0, x < 3.0), x, 1 / 6)),
    "hard_swish": (hard_swish, _hard_swish_slope),
}
ACTIVATIONS["silu"] = ACTIVATIONS["swish"]

# Layers that are the identity on the pooled vector at inference.
_PASS_THROUGH = (keras.layers.Dropout, keras.layers.GaussianDropout, keras.layers.GaussianNoise,
                 keras.layers.AlphaDropout, keras.layers.Flatten, keras.layers.InputLayer)


@keras.utils.register_keras_serializable(package="tfcxr")
class GradCamHead(keras.layers.Layer):
    """Feature map [N, h, w, K] -> (logits [N, C], Grad-CAM maps [N, C, h, w] in [0, 1]).

    See the module docstring for the computation. ``steps`` is the head after the global average
    pooling, as data: ``{"op": "dense", "units":
    n, "use_bias": b}``, ``{"op": "affine"}`` (per-channel scale and shift: an inference
    BatchNormalization) and ``{"op": "activation", "name": ...}`` (a key of ``ACTIVATIONS``).
    The layer owns the head's weights (``with_gradcam_output`` copies them in).
    """

    def __init__(self, steps, **kwargs):
        super().__init__(**kwargs)
        self.steps = [dict(step) for step in steps]
        for step in self.steps:
            if step["op"] == "activation" and step["name"] not in ACTIVATIONS:
                raise ValueError(f"unknown activation {step['name']!r}")

    def build(self, input_shape):
        if any(d is None for d in input_shape[1:]):
            raise ValueError(f"GradCamHead needs a static feature-map shape, got {input_shape}")
        dim = int(input_shape[-1])
        self._step_weights = []
        for i, step in enumerate(self.steps):
            if step["op"] == "dense":
                # Stored [units, dim], the layout of TFLite's FULLY_CONNECTED weights, so that both
                # matmuls of the step use one constant, not a transposed copy.
                kernel = self.add_weight(name=f"step{i}_kernel", shape=(step["units"], dim))
                bias = self.add_weight(name=f"step{i}_bias", shape=(step["units"],),
                                       initializer="zeros") if step["use_bias"] else None
                self._step_weights.append((kernel, bias))
                dim = step["units"]
            elif step["op"] == "affine":
                self._step_weights.append((
                    self.add_weight(name=f"step{i}_scale", shape=(dim,), initializer="ones"),
                    self.add_weight(name=f"step{i}_shift", shape=(dim,), initializer="zeros")))
            else:
                self._step_weights.append(())
        self.num_labels = dim
        super().build(input_shape)

    def call(self, feature_map):
        _, h, w, channels = feature_map.shape
        x = tf.reduce_mean(feature_map, axis=[1, 2])  # p, then the head's activations
        t = tf.reshape(feature_map, [-1, h * w, channels])  # A(i, j), then (d x / d p) A(i, j)
        for step, weights in zip(self.steps, self._step_weights):
            if step["op"] == "dense":
                kernel = tf.convert_to_tensor(weights[0])  # read once: one constant in TFLite
                x = tf.matmul(x, kernel, transpose_b=True)
                x = x if weights[1] is None else x + weights[1]
                t = tf.matmul(t, kernel, transpose_b=True)
            elif step["op"] == "affine":
                x = x * weights[0] + weights[1]
                t = t * weights[0]
            else:
                f, df = ACTIVATIONS[step["name"]]
                t = t * df(x)[:, tf.newaxis, :]
                x = f(x)
        maps = tf.reshape(tf.transpose(t, [0, 2, 1]), [-1, self.num_labels, h, w])
        return x, normalize_maps(maps)

    def compute_output_shape(self, input_shape):
        return ((input_shape[0], self.num_labels),
                (input_shape[0], self.num_labels, input_shape[1], input_shape[2]))

    def get_config(self):
        return {**super().get_config(), "steps": self.steps}


def with_gradcam_output(model: keras.Model, layer: str | None = None, *, preprocessing=None,
                        input_shape=None, input_name: str | None = None,
                        model_name: str | None = None) -> keras.Model:
    """A flat model ``input -> [logits, gradcam]`` computing ``model`` and its Grad-CAM maps.

    ``gradcam`` is [N, num_labels, h, w] in [0, 1] for every label, equal to
    ``grad_cam(model, x, "all")``. ``preprocessing`` (a Keras layer or callable on Keras
    tensors, e.g. 0..255 pixels to the model's normalised input) is prepended, with the new
    input described by ``input_shape`` and ``input_name`` (default: the model's). The layer is
    chosen as in ``grad_cam``. The new model holds copies of ``model``'s layers (their weights
    as of now).

    ``logits`` come from ``GradCamHead``, which shares the head's weights with the maps. For a
    QAT model they come from the model's own fake-quantized head instead, so that adding the
    maps leaves the exported logits as they were; the maps then use the float weights inside
    the QAT wrappers (as ``grad_cam`` on the float twin), and the converted file holds the head
    weights twice.
    """
    inputs, logits, trace = new_graph(model, preprocessing=preprocessing, input_shape=input_shape,
                                      input_name=input_name)
    if isinstance(logits, list):
        raise TfcxrError(f"{model.name!r} has {len(logits)} outputs; expected one logits output")
    name = resolve_layer(model, trace, layer, model_name)
    feature_map = dict((l.name, out) for l, out in trace)[name]
    chain = _layers_between(feature_map, logits)
    steps, values = _head_steps(chain, name)
    head = GradCamHead(steps, name="gradcam_head")
    head_logits, maps = head(feature_map)
    head.set_weights(values)
    if any(is_quantized_layer(step_layer) for step_layer, _ in chain):
        head_logits = logits
    outputs = [keras.layers.Activation("linear", name=LOGITS_OUTPUT)(head_logits),
               keras.layers.Activation("linear", name=GRADCAM_OUTPUT)(maps)]
    return build_model(inputs, outputs, name=f"{model.name}_with_gradcam")


def _layers_between(start, end) -> list:
    """``(layer, input shape)`` from tensor ``start`` to tensor ``end``, a single-input chain."""
    chain, tensor = [], end
    while tensor is not start:
        layer, node_index, _ = tensor._keras_history  # noqa: SLF001
        node_inputs = layer._inbound_nodes[node_index].keras_inputs  # noqa: SLF001
        if len(node_inputs) != 1:
            raise TfcxrError(f"layer {layer.name!r} between the Grad-CAM layer and the logits has "
                             f"{len(node_inputs)} inputs; on-device Grad-CAM needs a head that "
                             "sees only the pooled feature map")
        tensor = node_inputs[0]
        chain.append((layer, tuple(tensor.shape)))
    return chain[::-1]


def _head_steps(layers, feature_layer: str):
    """``GradCamHead`` steps and weight values for the layers after the Grad-CAM layer."""
    layers = [(quantized_layer_as_float(l), shape) for l, shape in layers]
    layers = [(l, shape) for l, shape in layers if l is not None and not _is_identity(l)]
    pooling = layers[0][0] if layers else None
    if not (isinstance(pooling, keras.layers.GlobalAveragePooling2D)
            and pooling.data_format == "channels_last"):
        found = f"{type(pooling).__name__} {pooling.name!r}" if pooling else "nothing"
        raise TfcxrError(f"on-device Grad-CAM needs global average pooling right after the "
                         f"Grad-CAM layer {feature_layer!r}; found {found}")
    steps, values = [], []
    for layer, input_shape in layers[1:]:
        activation = None
        if isinstance(layer, keras.layers.Dense) or _is_pointwise_conv(layer, input_shape):
            kernel, *bias = layer.get_weights()
            steps.append({"op": "dense", "units": int(kernel.shape[-1]), "use_bias": bool(bias)})
            values += [kernel.reshape(-1, kernel.shape[-1]).T, *bias]
            activation = _activation_name(layer, layer.get_config()["activation"])
        elif (isinstance(layer, keras.layers.BatchNormalization)
              and _is_last_axis(layer, len(input_shape))):
            steps.append({"op": "affine"})
            values += list(_batch_norm_affine(layer))
        else:
            activation = _activation_name(layer, None)
        if activation not in (None, "linear"):
            steps.append({"op": "activation", "name": activation})
    return steps, values


def _activation_name(layer, configured) -> str | None:
    """The ``ACTIVATIONS`` key of an activation layer or of a layer's ``activation`` setting."""
    if configured is not None:
        name = configured if isinstance(configured, str) else None
    elif isinstance(layer, HardSwish):
        name = "hard_swish"
    elif isinstance(layer, HardSigmoid):
        name = "hard_sigmoid"
    elif isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        plain = not config["negative_slope"] and not config["threshold"]
        cap = None if config["max_value"] is None else float(config["max_value"])
        name = {None: "relu", 6.0: "relu6"}.get(cap) if plain else None
    elif isinstance(layer, keras.layers.Activation):
        name = layer.get_config()["activation"]
        name = name if isinstance(name, str) else None
    else:
        raise TfcxrError(f"on-device Grad-CAM cannot express layer {layer.name!r} "
                         f"({type(layer).__name__}) in the head; supported after the global "
                         "average pooling: Dense, 1x1 Conv2D, BatchNormalization, activations "
                         f"({', '.join(sorted(ACTIVATIONS))}), dropout, flatten, reshape")
    if name not in ACTIVATIONS:
        raise TfcxrError(f"on-device Grad-CAM has no derivative for the activation of layer "
                         f"{layer.name!r} ({configured or type(layer).__name__}); supported: "
                         f"{', '.join(sorted(ACTIVATIONS))}")
    return name


def _is_identity(layer) -> bool:
    if isinstance(layer, _PASS_THROUGH):
        return True
    if isinstance(layer, keras.layers.Reshape):  # [N, K] <-> [N, 1, 1, K] only
        return sum(d != 1 for d in layer.get_config()["target_shape"]) <= 1
    return (isinstance(layer, keras.layers.Activation)
            and layer.get_config()["activation"] == "linear")


def _is_pointwise_conv(layer, input_shape) -> bool:
    """A Conv2D that acts as a Dense: 1x1 kernel, one group, on a 1x1 map."""
    return (type(layer) is keras.layers.Conv2D and tuple(layer.kernel_size) == (1, 1)
            and layer.groups == 1 and tuple(input_shape[1:3]) == (1, 1))


def _is_last_axis(layer, rank: int) -> bool:
    axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    return [a % rank for a in axis] == [rank - 1]


def _batch_norm_affine(layer):
    """Inference BatchNormalization as ``x * scale + shift``."""
    config, weights = layer.get_config(), list(layer.get_weights())
    dim = weights[-1].shape[0]
    gamma = weights.pop(0) if config["scale"] else np.ones(dim, np.float32)
    beta = weights.pop(0) if config["center"] else np.zeros(dim, np.float32)
    mean, variance = weights
    scale = gamma / np.sqrt(variance + config["epsilon"])
    return scale.astype(np.float32), (beta - mean * scale).astype(np.float32)
