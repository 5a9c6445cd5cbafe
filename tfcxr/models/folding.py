"""Fold each BatchNormalization into the depthwise convolution it follows, for inference graphs.

``fold_batch_norms(model)`` returns a copy of a functional model in which every
``BatchNormalization`` whose only input is a ``DepthwiseConv2D`` that feeds nothing else is folded
into that convolution (kernel scaled per channel, the shift as its bias) and replaced by a linear
``Activation`` of the same name, so that layer names (the Grad-CAM layer among them) stay. The
copy computes the same function at inference, to rounding. The TFLite converter folds such pairs
itself into one convolution; folding first is what lets ``layers.split_depthwise_conv2d`` split
a large depthwise kernel into a sum without leaving a BatchNormalization after the sum.
"""

from __future__ import annotations

import numpy as np

from tfcxr.backend import keras


def _inbound_names(layer_config: dict) -> list[str]:
    """The names of the layers a functional layer config reads from."""
    names = []
    for node in layer_config.get("inbound_nodes", []):
        for entry in node:
            names.append(entry[0])
    return names


def foldable_pairs(model: keras.Model) -> dict[str, str]:
    """{depthwise layer name: batch-norm layer name} for the pairs ``fold_batch_norms`` folds."""
    layers = {layer.name: layer for layer in model.layers}
    consumers: dict[str, list[str]] = {}
    for config in model.get_config()["layers"]:
        for source in _inbound_names(config):
            consumers.setdefault(source, []).append(config["name"])
    pairs = {}
    for name, readers in consumers.items():
        conv = layers.get(name)
        if (isinstance(conv, keras.layers.DepthwiseConv2D) and conv.activation is keras.activations.linear
                and conv.depth_multiplier == 1 and len(readers) == 1
                and isinstance(layers[readers[0]], keras.layers.BatchNormalization)
                and layers[readers[0]].axis in ([3], [-1], 3, -1)):
            pairs[name] = readers[0]
    return pairs


def _folded_weights(conv, norm) -> list[np.ndarray]:
    gamma = norm.gamma.numpy() if norm.scale else 1.0
    beta = norm.beta.numpy() if norm.center else 0.0
    scale = gamma / np.sqrt(norm.moving_variance.numpy() + norm.epsilon)
    bias = conv.bias.numpy() if conv.use_bias else 0.0
    kernel = conv.depthwise_kernel.numpy() * scale[None, None, :, None]
    return [kernel, (beta + (bias - norm.moving_mean.numpy()) * scale).astype(np.float32)]


def fold_batch_norms(model: keras.Model) -> keras.Model:
    """A copy of ``model`` with its depthwise-convolution/BatchNormalization pairs folded (see the
    module docstring); ``model`` itself is not changed. Returns ``model`` when nothing folds."""
    pairs = foldable_pairs(model)
    if not pairs:
        return model
    norms = {norm: conv for conv, norm in pairs.items()}

    def clone(layer):
        if layer.name in norms:
            return keras.layers.Activation("linear", name=layer.name, dtype=layer.dtype_policy)
        config = layer.get_config()
        if layer.name in pairs:
            config["use_bias"] = True
        return type(layer).from_config(config)

    folded = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name in norms:
            continue
        target = folded.get_layer(layer.name)
        if layer.name in pairs:
            target.set_weights(_folded_weights(layer, model.get_layer(pairs[layer.name])))
        else:
            target.set_weights(layer.get_weights())
    return folded
