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
import warnings

import numpy as np

from tfcxr.backend import keras
from tfcxr.models import create
from tfcxr.models.porting import PortingError, register_porter

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
_SHOWN = 8  # keys listed per kind of problem in an error message


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


def _conv_kernel(w):
    return np.transpose(w, (2, 3, 1, 0))


def _expected(layer) -> list[tuple[str, object]]:
    """(state_dict key, layout transform) for each of ``layer.get_weights()``, in order."""
    module = torch_module(layer.name)
    if isinstance(layer, keras.layers.BatchNormalization):
        return [(f"{module}.{p}", np.asarray)
                for p in ("weight", "bias", "running_mean", "running_var")]
    if isinstance(layer, keras.layers.Conv2D):
        return [(f"{module}.weight", _conv_kernel)]
    if isinstance(layer, keras.layers.Dense):
        return [(f"{module}.weight", np.transpose), (f"{module}.bias", np.asarray)]
    raise PortingError(f"layer {layer.name!r} ({type(layer).__name__}) has no PyTorch counterpart")


def _problem_list(title: str, items: list[str]) -> str:
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return f"{title} ({len(items)}): {', '.join(items[:_SHOWN])}{more}"


def load_state_dict(model: keras.Model, state_dict: dict[str, np.ndarray], source: str,
                    load_head: bool = True) -> None:
    """Fill a ``tfcxr.models.densenet`` model from a torchvision ``state_dict``: all of it, or
    nothing. ``load_head=False`` leaves the ``logits`` layer as it is."""
    tensors = {normalise_key(k): np.asarray(v) for k, v in state_dict.items()
               if not k.endswith("num_batches_tracked")}
    assignments, missing, misshaped, used = [], [], [], set()
    for layer in model.layers:
        if not layer.weights:
            continue
        expected = _expected(layer)
        used.update(key for key, _ in expected)
        if layer.name == _HEAD_LAYER and not load_head:
            continue
        values = []
        for (key, transform), weight in zip(expected, layer.get_weights()):
            if key not in tensors:
                missing.append(key)
                continue
            value = transform(tensors[key]).astype(weight.dtype)
            if value.shape != weight.shape:
                misshaped.append(f"{key} {tuple(tensors[key].shape)} for Keras {weight.shape}")
            values.append(value)
        assignments.append((layer, values))
    unexpected = sorted(set(tensors) - used)

    problems = [_problem_list(title, items) for title, items in (
        ("missing keys", missing), ("unexpected keys", unexpected), ("misshaped keys", misshaped))
        if items]
    if problems:
        raise PortingError(f"{source}: does not fit {model.name!r}: " + "; ".join(problems))
    for layer, values in assignments:
        layer.set_weights(values)


@register_porter("densenet121", "densenet161", "densenet169", "densenet201")
def port_densenet(arch: str, state_dict: dict[str, np.ndarray], num_classes: int | None,
                  source: str, **build_kwargs) -> keras.Model:
    """Build ``arch`` and load a torchvision DenseNet ``state_dict`` into it.

    A checkpoint whose head has another class count than ``num_classes`` (ImageNet's 1000 for 14
    findings) gives its backbone only; the new head keeps its random initialisation, with a warning.
    """
    head = next((np.asarray(v) for k, v in state_dict.items()
                 if normalise_key(k) == f"{_HEAD_MODULE}.weight"), None)
    if head is None:
        raise PortingError(f"{source}: no classifier.weight; is this a torchvision DenseNet "
                           "checkpoint?")
    checkpoint_classes = int(head.shape[0])
    num_classes = checkpoint_classes if num_classes is None else num_classes
    load_head = num_classes == checkpoint_classes
    model = create(arch, num_classes=num_classes, **build_kwargs)
    load_state_dict(model, state_dict, source, load_head=load_head)
    if not load_head:
        warnings.warn(f"{source}: the checkpoint's classifier has {checkpoint_classes} classes, "
                      f"the model {num_classes}: ported the backbone only; the 'logits' layer is "
                      "randomly initialised and must be trained", stacklevel=2)
    return model
