"""The model zoo: ``create(name, ...)`` and ``list_models()`` over a registry of builders.

Every model outputs logits; sigmoid is applied by losses, metrics and exporters.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from tfcxr.errors import TfcxrError
from tfcxr.models.registry import ModelSpec, UnknownModelError, get_spec, list_models, register_model

# Modules whose import registers builders. Each architecture file registers its own models.
ARCHITECTURE_MODULES: tuple[str, ...] = ("ofa_mobilenet", "mobilenet_v3", "densenet", "resnet", "vit")

for _module in ARCHITECTURE_MODULES:
    importlib.import_module(f"tfcxr.models.{_module}")


def create(name: str, num_classes: int = 14, input_shape: tuple[int, int, int] | None = None,
           weights: str | Path | None = None, **kwargs):
    """Build registered model ``name`` with a ``num_classes``-logit head.

    ``input_shape`` defaults to the model's preprocessing spec. ``weights`` is a local weights file
    (``.weights.h5`` / ``.h5``) produced by ``model.save_weights`` or ``tfcxr port-weights``.
    """
    spec = get_spec(name)
    shape = tuple(input_shape) if input_shape is not None else spec.preprocessing.input_shape
    model = spec.builder(num_classes=num_classes, input_shape=shape, **kwargs)
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise TfcxrError(f"{path}: weights file not found")
        try:
            model.load_weights(str(path))
        except (ValueError, OSError) as e:
            raise TfcxrError(f"{path}: cannot load weights into {name!r} "
                             f"({num_classes} classes, input {shape}): {e}") from None
    return model


__all__ = ["ModelSpec", "UnknownModelError", "create", "get_spec", "list_models", "register_model"]
