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

import numpy as np

from tfcxr.backend import keras
from tfcxr.models import create
from tfcxr.models.layers import SqueezeExcite
from tfcxr.models.porting import PortingError, register_porter
from tfcxr.models.porting.transfer import (
    BATCHNORM_PARAMS, as_is, conv_kernel, depthwise_kernel, head_to_load, linear_kernel, load_tensors)

_BLOCK_WRAPPER = re.compile(r"^blocks\.(\d+)\.(?:mobile_inverted_conv|conv)\.")
_HEAD_LAYER, _HEAD_MODULE = "logits", "classifier.linear"


def normalise_key(key: str) -> str:
    """Map a darmo / OFA state_dict key onto the module path the Keras layer names follow."""
    key = _BLOCK_WRAPPER.sub(r"blocks.\1.", key)
    if key in ("classifier.weight", "classifier.bias"):
        key = key.replace("classifier.", f"{_HEAD_MODULE}.")
    return key


def _expected(layer) -> list[tuple[str, object]]:
    """(state_dict key, layout transform) for each of ``layer.get_weights()``, in order."""
    if isinstance(layer, SqueezeExcite):
        fc = f"{layer.name}.fc"
        return [(f"{fc}.reduce.weight", conv_kernel), (f"{fc}.expand.weight", conv_kernel),
                (f"{fc}.reduce.bias", as_is), (f"{fc}.expand.bias", as_is)]
    if isinstance(layer, keras.layers.BatchNormalization):
        return [(f"{layer.name}.{p}", as_is) for p in BATCHNORM_PARAMS]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return [(f"{layer.name}.weight", depthwise_kernel)]
    if isinstance(layer, keras.layers.Conv2D):
        return [(f"{layer.name}.weight", conv_kernel)] + (
            [(f"{layer.name}.bias", as_is)] if layer.use_bias else [])
    if isinstance(layer, keras.layers.Dense) and layer.name == _HEAD_LAYER:
        return [(f"{_HEAD_MODULE}.weight", linear_kernel), (f"{_HEAD_MODULE}.bias", as_is)]
    raise PortingError(f"layer {layer.name!r} ({type(layer).__name__}) has no PyTorch counterpart")


@register_porter("eeea_net_c2", "eeea_net_c1", "ofa_595")
def port_ofa(arch: str, state_dict: dict[str, np.ndarray], num_classes: int | None, source: str,
             **build_kwargs) -> keras.Model:
    """Build ``arch`` and load a darmo / OFA ``state_dict`` into it (all of it, or nothing)."""
    tensors = {normalise_key(k): np.asarray(v) for k, v in state_dict.items()
               if not k.endswith("num_batches_tracked")}
    num_classes, load_head = head_to_load(
        tensors, f"{_HEAD_MODULE}.weight", num_classes, source,
        "is this an OFA / darmo MobileNetV3 checkpoint?")
    model = create(arch, num_classes=num_classes, **build_kwargs)
    load_tensors(model, tensors, _expected, source, skip_layer=None if load_head else _HEAD_LAYER,
                 what=f" ({arch}; block keys shown without their mobile_inverted_conv/conv wrapper)")
    return model
