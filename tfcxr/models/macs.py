"""Multiply-accumulate count of a model, the "FLOPs" of the paper (0.3 G for EEEA-Net-C2 at 224).

Counts the MACs of the weight layers, which dominate a CNN: Conv2D, DepthwiseConv2D,
SeparableConv2D, Dense and the two 1x1 convolutions inside ``SqueezeExcite``, from each layer's
output shapes in the built graph (a shared layer counts once per call), plus self-attention
(``MultiHeadAttention``: its four projections and the two token-by-token products). Nested models
and QAT wrappers are walked into. Element-wise ops, BatchNorm, LayerNorm, softmax and pooling are
not counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from tfcxr.backend import keras
from tfcxr.models.layers import SqueezeExcite


def _size(variable) -> int:
    return math.prod(int(d) for d in variable.shape)


def _macs_per_position(layer) -> int:
    """MACs for all output channels at one output position (SE: once per image)."""
    if isinstance(layer, SqueezeExcite):
        return _size(layer.reduce_kernel) + _size(layer.expand_kernel)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return _size(layer.depthwise_kernel)
    if isinstance(layer, keras.layers.SeparableConv2D):
        return _size(layer.depthwise_kernel) + _size(layer.pointwise_kernel)
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
        return _size(layer.kernel)
    return 0


def _positions(layer, graph_layer) -> int:
    """Output positions summed over the calls of ``graph_layer``: all dims but batch and channels.

    SqueezeExcite's convolutions run on the pooled 1x1 map, so each call counts one position.
    """
    calls = range(len(graph_layer._inbound_nodes))  # noqa: SLF001 (Keras has no public accessor)
    if isinstance(layer, SqueezeExcite):
        return len(calls)
    return sum(math.prod(int(d) for d in graph_layer.get_output_shape_at(i)[1:-1]) for i in calls)


def _weight_layers(model: keras.Model) -> Iterator[tuple[keras.layers.Layer, keras.layers.Layer]]:
    """Yield (layer holding the kernels, layer present in the graph) pairs, depth first."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _weight_layers(layer)
        elif isinstance(layer, keras.layers.Wrapper):  # QuantizeWrapper, TimeDistributed, ...
            yield layer.layer, layer
        else:
            yield layer, layer


def _attention_macs(layer, graph_layer) -> int:
    """Self-attention over N tokens: N x (Q, K, V, output kernels) + N^2 x heads x (key + value dims)."""
    config = layer.get_config()
    heads, key_dim = config["num_heads"], config["key_dim"]
    value_dim = config["value_dim"] or key_dim
    kernels = sum(_size(w) for w in layer.weights if len(w.shape) >= 2)
    total = 0
    for i in range(len(graph_layer._inbound_nodes)):  # noqa: SLF001
        tokens = math.prod(int(d) for d in graph_layer.get_output_shape_at(i)[1:-1])
        total += kernels * tokens + tokens * tokens * heads * (key_dim + value_dim)
    return total


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates for one image through ``model``, which must have a fixed input size."""
    total = 0
    for layer, graph_layer in _weight_layers(model):
        if isinstance(layer, keras.layers.MultiHeadAttention):
            total += _attention_macs(layer, graph_layer)
            continue
        per_position = _macs_per_position(layer)
        if per_position:
            total += per_position * _positions(layer, graph_layer)
    return total
