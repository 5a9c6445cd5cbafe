"""Porter for torchvision DenseNets (121, 161, 169, 201), including CheXNet-style checkpoints.

``tfcxr.models.densenet`` uses keras.applications' layer names, so each Keras layer is mapped to
its torchvision module:

    conv1/conv, conv1/bn             features.conv0, features.norm0
    conv{b+1}_block{l}_0_bn          features.denseblock{b}.denselayer{l}.norm1
    conv{b+1}_block{l}_1_conv / _1_bn / _2_conv      ... .conv1 / .norm2 / .conv2
    pool{t+1}_bn, pool{t+1}_conv     features.transition{t}.norm, features.transition{t}.conv
    bn, logits                       features.norm5, classifier

Keys are normalised first:

- checkpoints saved by torchvision before 0.3 spell dense-layer modules ``norm.1`` / ``conv.2``;
  torchvision's own loader renames them with a regex, and so does this one;
- a model wrapped in an attribute (CheXNet's ``densenet121.features...``) loses the wrapper, and a
  ``classifier.0`` head (``Sequential(Linear, Sigmoid)``) becomes ``classifier``;
- ``num_batches_tracked`` counters are dropped (Keras has no such variable).

Layouts: conv OIHW -> HWIO, BN (weight, bias, running_mean, running_var) -> (gamma, beta,
moving_mean, moving_variance), Linear (out, in) -> (in, out).
"""

from __future__ import annotations

import re

import numpy as np

from tfcxr.backend import keras
from tfcxr.models import create
from tfcxr.models.porting import PortingError, register_porter
from tfcxr.models.porting.transfer import (
    BATCHNORM_PARAMS, as_is, conv_kernel, head_to_load, linear_kernel, load_tensors)

# torchvision.models.densenet._load_state_dict's pattern: "denselayer1.norm.1.weight" becomes
# "denselayer1.norm1.weight".
_OLD_DENSE_LAYER_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\."
    r"((?:[12])\.(?:weight|bias|running_mean|running_var))$")
_WRAPPED_KEY = re.compile(r"^(?:\w+\.)+?(?=(?:features|classifier)\.)")
_SEQUENTIAL_HEAD = re.compile(r"^classifier\.0\.(weight|bias)$")

_DENSE_LAYER = re.compile(r"^conv(\d+)_block(\d+)_(0_bn|1_conv|1_bn|2_conv)$")
_DENSE_LAYER_PART = {"0_bn": "norm1", "1_conv": "conv1", "1_bn": "norm2", "2_conv": "conv2"}
_TRANSITION = re.compile(r"^pool(\d+)_(bn|conv)$")
_FIXED_MODULES = {"conv1/conv": "features.conv0", "conv1/bn": "features.norm0",
                  "bn": "features.norm5", "logits": "classifier"}
_HEAD_LAYER, _HEAD_MODULE = "logits", "classifier"


def normalise_key(key: str) -> str:
    """Map any supported spelling of a torchvision DenseNet key onto the current one."""
    key = _WRAPPED_KEY.sub("", key, count=1)
    key = _SEQUENTIAL_HEAD.sub(r"classifier.\1", key)
    old = _OLD_DENSE_LAYER_KEY.match(key)
    return old.group(1) + old.group(2) if old else key


def torch_module(layer_name: str) -> str:
    """The torchvision module path of the Keras layer ``layer_name``."""
    if layer_name in _FIXED_MODULES:
        return _FIXED_MODULES[layer_name]
    if m := _DENSE_LAYER.match(layer_name):
        stage, layer, part = m.groups()
        return (f"features.denseblock{int(stage) - 1}.denselayer{layer}."
                f"{_DENSE_LAYER_PART[part]}")
    if m := _TRANSITION.match(layer_name):
        stage, part = m.groups()
        return f"features.transition{int(stage) - 1}.{'norm' if part == 'bn' else 'conv'}"
    raise PortingError(f"layer {layer_name!r} has no torchvision DenseNet counterpart")


def _expected(layer) -> list[tuple[str, object]]:
    """(state_dict key, layout transform) for each of ``layer.get_weights()``, in order."""
    module = torch_module(layer.name)
    if isinstance(layer, keras.layers.BatchNormalization):
        return [(f"{module}.{p}", as_is) for p in BATCHNORM_PARAMS]
    if isinstance(layer, keras.layers.Conv2D):
        return [(f"{module}.weight", conv_kernel)]
    if isinstance(layer, keras.layers.Dense):
        return [(f"{module}.weight", linear_kernel), (f"{module}.bias", as_is)]
    raise PortingError(f"layer {layer.name!r} ({type(layer).__name__}) has no PyTorch counterpart")


def _normalised(state_dict: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {normalise_key(k): np.asarray(v) for k, v in state_dict.items()
            if not k.endswith("num_batches_tracked")}


def load_state_dict(model: keras.Model, state_dict: dict[str, np.ndarray], source: str,
                    load_head: bool = True) -> None:
    """Fill a ``tfcxr.models.densenet`` model from a torchvision ``state_dict``: all of it, or
    nothing. ``load_head=False`` leaves the ``logits`` layer as it is."""
    load_tensors(model, _normalised(state_dict), _expected, source,
                 skip_layer=None if load_head else _HEAD_LAYER)


@register_porter("densenet121", "densenet161", "densenet169", "densenet201")
def port_densenet(arch: str, state_dict: dict[str, np.ndarray], num_classes: int | None,
                  source: str, **build_kwargs) -> keras.Model:
    """Build ``arch`` and load a torchvision DenseNet ``state_dict`` into it (all or nothing)."""
    tensors = _normalised(state_dict)
    num_classes, load_head = head_to_load(tensors, f"{_HEAD_MODULE}.weight", num_classes, source,
                                          "is this a torchvision DenseNet checkpoint?")
    model = create(arch, num_classes=num_classes, **build_kwargs)
    load_tensors(model, tensors, _expected, source, skip_layer=None if load_head else _HEAD_LAYER)
    return model
