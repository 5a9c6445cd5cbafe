"""Porter for OFA MobileNetV3 subnets (EEEA-Net-C2/C1, OFA-595) from darmo / OFA checkpoints.

The Keras layers of ``tfcxr.models.ofa_mobilenet`` are named after the PyTorch module paths, so
a key maps to a layer by name once three spellings are normalised:

- ``blocks.{i}.mobile_inverted_conv.*`` (darmo, OFA <= 0.0.4) and ``blocks.{i}.conv.*``
  (current OFA) both become ``blocks.{i}.*``;
- darmo's ``reset_classifier`` head ``classifier.{weight,bias}`` becomes
  ``classifier.linear.{weight,bias}``, which is the Keras ``logits`` Dense;
- BatchNorm's ``num_batches_tracked`` counters are dropped (Keras has no such variable).

Layouts: conv OIHW -> HWIO, depthwise (C, 1, kh, kw) -> (kh, kw, C, 1), BN
(weight, bias, running_mean, running_var) -> (gamma, beta, moving_mean, moving_variance),
Linear (out, in) -> (in, out). Build with the default ``padding="pytorch"`` so the logits match.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from tfcxr.backend import keras
from tfcxr.models import create
from tfcxr.models.layers import SqueezeExcite
from tfcxr.models.porting import PortingError, register_porter

_BLOCK_WRAPPER = re.compile(r"^blocks\.(\d+)\.(?:mobile_inverted_conv|conv)\.")
_HEAD_LAYER, _HEAD_MODULE = "logits", "classifier.linear"
_SHOWN = 8  # keys listed per kind of problem in an error message


def normalise_key(key: str) -> str:
    """Map a darmo / OFA state_dict key onto the module path the Keras layer names follow."""
    key = _BLOCK_WRAPPER.sub(r"blocks.\1.", key)
    if key in ("classifier.weight", "classifier.bias"):
        key = key.replace("classifier.", f"{_HEAD_MODULE}.")
    return key


def _conv(w):
    return np.transpose(w, (2, 3, 1, 0))


def _depthwise(w):
    return np.transpose(w, (2, 3, 0, 1))


def _as_is(w):
    return w


def _linear(w):
    return np.transpose(w)


def _expected(layer) -> list[tuple[str, object]]:
    """(state_dict key, layout transform) for each of ``layer.get_weights()``, in order."""
    if isinstance(layer, SqueezeExcite):
        fc = f"{layer.name}.fc"
        return [(f"{fc}.reduce.weight", _conv), (f"{fc}.expand.weight", _conv),
                (f"{fc}.reduce.bias", _as_is), (f"{fc}.expand.bias", _as_is)]
    if isinstance(layer, keras.layers.BatchNormalization):
        return [(f"{layer.name}.{p}", _as_is)
                for p in ("weight", "bias", "running_mean", "running_var")]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return [(f"{layer.name}.weight", _depthwise)]
    if isinstance(layer, keras.layers.Conv2D):
        return [(f"{layer.name}.weight", _conv)] + (
            [(f"{layer.name}.bias", _as_is)] if layer.use_bias else [])
    if isinstance(layer, keras.layers.Dense) and layer.name == _HEAD_LAYER:
        return [(f"{_HEAD_MODULE}.weight", _linear), (f"{_HEAD_MODULE}.bias", _as_is)]
    raise PortingError(f"layer {layer.name!r} ({type(layer).__name__}) has no PyTorch counterpart")


def _problem_list(title: str, items: list[str]) -> str:
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return f"{title} ({len(items)}): {', '.join(items[:_SHOWN])}{more}"


@register_porter("eeea_net_c2", "eeea_net_c1", "ofa_595")
def port_ofa(arch: str, state_dict: dict[str, np.ndarray], num_classes: int | None, source: str,
             **build_kwargs) -> keras.Model:
    """Build ``arch`` and load a darmo / OFA ``state_dict`` into it (all of it, or nothing).

    A head with another class count than ``num_classes`` is skipped with a warning.
    """
    tensors = {normalise_key(k): np.asarray(v) for k, v in state_dict.items()
               if not k.endswith("num_batches_tracked")}
    head = tensors.get(f"{_HEAD_MODULE}.weight")
    if head is None:
        raise PortingError(f"{source}: no classifier weights ({_HEAD_MODULE}.weight or "
                           f"classifier.weight); is this an OFA / darmo MobileNetV3 checkpoint?")
    checkpoint_classes = int(head.shape[0])
    num_classes = checkpoint_classes if num_classes is None else num_classes
    load_head = num_classes == checkpoint_classes
    if not load_head:
        warnings.warn(f"{source}: the checkpoint's head has {checkpoint_classes} classes, not "
                      f"{num_classes}; porting the backbone only, the new head stays random",
                      UserWarning, stacklevel=2)
    model = create(arch, num_classes=num_classes, **build_kwargs)

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
            array = tensors[key]
            value = transform(array).astype(weight.dtype) if array.ndim == weight.ndim else None
            if value is None or value.shape != weight.shape:
                misshaped.append(f"{key} {array.shape} for Keras {weight.shape}")
                continue
            values.append(value)
        assignments.append((layer, values))
    unexpected = sorted(set(tensors) - used)

    problems = [_problem_list(title, items) for title, items in (
        ("missing keys", missing), ("unexpected keys", unexpected), ("misshaped keys", misshaped))
        if items]
    if problems:
        raise PortingError(f"{source}: does not fit {arch!r} (block keys shown without their "
                           f"mobile_inverted_conv/conv wrapper): " + "; ".join(problems))
    for layer, values in assignments:
        layer.set_weights(values)
    return model
