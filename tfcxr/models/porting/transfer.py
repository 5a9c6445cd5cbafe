"""The loop every porter shares: map each Keras layer's weights to state_dict keys, check them all,
then assign them all (a checkpoint is never loaded partially).

A porter supplies ``expected(layer) -> [(key, transform), ...]``, one entry per
``layer.get_weights()`` in order, where ``transform`` turns the PyTorch array into the Keras layout.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from tfcxr.models.porting import PortingError

SHOWN = 8  # keys listed per kind of problem in an error message


def conv_kernel(w: np.ndarray) -> np.ndarray:
    """PyTorch conv OIHW -> Keras HWIO."""
    return np.transpose(w, (2, 3, 1, 0))


def depthwise_kernel(w: np.ndarray) -> np.ndarray:
    """PyTorch depthwise (C, 1, kh, kw) -> Keras (kh, kw, C, 1)."""
    return np.transpose(w, (2, 3, 0, 1))


def linear_kernel(w: np.ndarray) -> np.ndarray:
    """PyTorch Linear (out, in) -> Keras Dense (in, out)."""
    return np.transpose(w)


def as_is(w: np.ndarray) -> np.ndarray:
    return w


BATCHNORM_PARAMS = ("weight", "bias", "running_mean", "running_var")  # gamma, beta, mean, var


def _problem_list(title: str, items: list[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return f"{title} ({len(items)}): {', '.join(items[:SHOWN])}{more}"


def load_tensors(model, tensors: dict[str, np.ndarray], expected: Callable, source: str, *,
                 skip_layer: str | None = None, what: str = "") -> None:
    """Assign ``tensors`` (already key-normalised) to every weighted layer of ``model``.

    ``skip_layer`` (a new head) is left as it is, but its keys still count as known. Raises
    PortingError naming ``source`` and the missing, unexpected and misshaped keys; assigns nothing
    unless everything fits.
    """
    assignments, missing, misshaped, used = [], [], [], set()
    for layer in model.layers:
        if not layer.weights:
            continue
        keys = expected(layer)
        used.update(key for key, _ in keys)
        if layer.name == skip_layer:
            continue
        values = []
        for (key, transform), weight in zip(keys, layer.get_weights()):
            if key not in tensors:
                missing.append(key)
                continue
            array = tensors[key]
            value = transform(array).astype(weight.dtype) if array.ndim == weight.ndim else None
            if value is None or value.shape != weight.shape:
                misshaped.append(f"{key} {tuple(array.shape)} for Keras {weight.shape}")
                continue
            values.append(value)
        assignments.append((layer, values))
    unexpected = sorted(set(tensors) - used)
    problems = [_problem_list(title, items) for title, items in (
        ("missing keys", missing), ("unexpected keys", unexpected), ("misshaped keys", misshaped))
        if items]
    if problems:
        raise PortingError(f"{source}: does not fit {model.name!r}{what}: " + "; ".join(problems))
    for layer, values in assignments:
        layer.set_weights(values)


def head_to_load(tensors: dict[str, np.ndarray], head_key: str, num_classes: int | None,
                 source: str, hint: str) -> tuple[int, bool]:
    """(class count to build, whether the checkpoint's head fits it).

    ``num_classes=None`` keeps the checkpoint's head; another count (ImageNet's 1000 -> 14 findings)
    keeps the backbone only and warns that the new head starts random.
    """
    head = tensors.get(head_key)
    if head is None:
        raise PortingError(f"{source}: no classifier weights ({head_key}); {hint}")
    checkpoint_classes = int(head.shape[0])
    if num_classes is None or num_classes == checkpoint_classes:
        return checkpoint_classes, True
    warnings.warn(f"{source}: the checkpoint's head has {checkpoint_classes} classes, not "
                  f"{num_classes}; porting the backbone only, the new head stays random and must "
                  "be trained", UserWarning, stacklevel=3)
    return num_classes, False
