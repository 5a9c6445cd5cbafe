"""Port PyTorch checkpoints (ImageNet-pretrained darmo / OFA / torchvision weights) to tfcxr models.

The build machines cannot download weights, so a user brings a ``.pt`` / ``.pth`` file and this
package turns it into a Keras model of the same architecture. The API is three functions:

- ``load_torch_checkpoint(path) -> dict[str, np.ndarray]`` reads a checkpoint on the CPU
  (``weights_only``, so no pickled code runs), unwraps ``{"state_dict": ...}`` /
  ``{"model": ...}`` and strips DataParallel's ``module.`` prefixes.
- ``port_state_dict(arch, state_dict, num_classes=None, source=None, **build_kwargs)`` builds
  registered model ``arch`` and fills it from ``state_dict``. ``num_classes=None`` keeps the
  checkpoint's head; a different count keeps the backbone and leaves the new head at its random
  initialisation (ImageNet -> 14 findings). ``source`` (the file) is named in every error.
- ``@register_porter(*archs)`` registers ``porter(arch, state_dict, num_classes, source,
  **build_kwargs) -> keras.Model`` for one or more model names; a porter module is listed in
  ``PORTER_MODULES`` so importing this package registers it.

Porters raise ``PortingError`` (a ``TfcxrError``) naming the file and the missing, unexpected or
misshaped keys, and never load a checkpoint partially.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

import numpy as np

from tfcxr.errors import TfcxrError

_PORTERS: dict[str, Callable] = {}

# Modules whose import registers porters.
PORTER_MODULES: tuple[str, ...] = ("ofa", "densenet")

_WRAPPER_KEYS = ("state_dict", "model")


class PortingError(TfcxrError):
    """A checkpoint does not fit the model it is ported to."""


def register_porter(*archs: str):
    """Decorator registering ``porter(arch, state_dict, num_classes, source, **build_kwargs)``."""

    def decorator(porter):
        for arch in archs:
            if arch in _PORTERS:
                raise ValueError(f"a porter for {arch!r} is registered twice")
            _PORTERS[arch] = porter
        return porter

    return decorator


def list_porters() -> list[str]:
    return sorted(_PORTERS)


def port_state_dict(arch: str, state_dict: dict[str, np.ndarray], num_classes: int | None = None,
                    source: str | Path | None = None, **build_kwargs):
    """Build registered model ``arch`` with the weights of a PyTorch ``state_dict``."""
    try:
        porter = _PORTERS[arch]
    except KeyError:
        raise PortingError(f"no weight porter for model {arch!r}; "
                           f"porters exist for: {', '.join(list_porters())}") from None
    return porter(arch, state_dict, num_classes, "state_dict" if source is None else str(source),
                  **build_kwargs)


def load_torch_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """Read a PyTorch checkpoint into ``{key: float32/int64 array}`` without running pickled code."""
    path = Path(path)
    if not path.is_file():
        raise PortingError(f"{path}: checkpoint not found")
    try:
        import torch
    except ImportError:
        raise PortingError(f"{path}: reading PyTorch checkpoints needs torch; "
                           "install it with: pip install -e '.[torch]'") from None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt or non-tensor pickle
        raise PortingError(f"{path}: not a readable PyTorch state_dict ({e})") from None
    for key in _WRAPPER_KEYS:
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    if not isinstance(checkpoint, dict) or not checkpoint:
        raise PortingError(f"{path}: expected a state_dict (a dict of tensors), "
                           f"got {type(checkpoint).__name__}")
    arrays = {}
    for key, value in checkpoint.items():
        if not isinstance(value, torch.Tensor):
            raise PortingError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        arrays[key.removeprefix("module.")] = value.detach().cpu().numpy()
    return arrays


for _module in PORTER_MODULES:
    importlib.import_module(f"tfcxr.models.porting.{_module}")

__all__ = ["PORTER_MODULES", "PortingError", "list_porters", "load_torch_checkpoint",
           "port_state_dict", "register_porter"]
