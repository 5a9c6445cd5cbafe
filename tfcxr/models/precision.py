"""Mixed precision: build models under a Keras dtype policy, and bring them back to float32.

Every tfcxr model's ``logits`` layer is float32 whatever the policy, so logits, losses and
metrics stay float32 while the rest computes in float16 or bfloat16. Saved artifacts are float32:
``as_float32`` rebuilds a model with float32 layers and the same weights before it is saved, so
exporters, QAT and evaluation never see a mixed model.
"""

from __future__ import annotations

import contextlib

from tfcxr.backend import keras
from tfcxr.config import PRECISIONS


@contextlib.contextmanager
def precision_policy(name: str):
    """Build (and train) models under the dtype policy ``name`` within the block."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def is_mixed(model: keras.Model) -> bool:
    return any(layer.dtype_policy.name != "float32" for layer in model.layers)


def as_float32(model: keras.Model) -> keras.Model:
    """``model`` itself if it is float32, else a float32 copy with the same weights."""
    if not is_mixed(model):
        return model

    def clone(layer):
        config = layer.get_config()
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    with precision_policy("float32"):
        copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
