"""A registry of model builders: ``@register_model`` adds one, ``create`` builds it by name.

Each entry states, next to its builder, the facts that training, export and explanation need:
its role (teacher or student), its preprocessing contract and the layer Grad-CAM explains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from tfcxr.errors import TfcxrError
from tfcxr.preprocessing import PreprocessingSpec

_REGISTRY: dict[str, "ModelSpec"] = {}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    role: str  # "teacher" or "student"
    builder: Callable  # builder(num_classes, input_shape, **kwargs) -> keras.Model (logits)
    preprocessing: PreprocessingSpec = field(default_factory=PreprocessingSpec)
    gradcam_layer: str = ""
    description: str = ""
    quantizable: bool = False


class UnknownModelError(TfcxrError):
    pass


def register_model(name: str, *, role: str, preprocessing: PreprocessingSpec | None = None,
                   gradcam_layer: str, description: str = "", quantizable: bool = False):
    """Decorator registering ``builder(num_classes, input_shape, **kwargs)`` under ``name``."""
    if role not in ("teacher", "student"):
        raise ValueError(f"role must be 'teacher' or 'student', got {role!r}")

    def decorator(builder):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelSpec(
            name=name, role=role, builder=builder,
            preprocessing=preprocessing or PreprocessingSpec(),
            gradcam_layer=gradcam_layer, description=description, quantizable=quantizable,
        )
        return builder

    return decorator


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownModelError(f"unknown model {name!r}; known models: {known}") from None


def list_models(role: str | None = None) -> list[str]:
    return sorted(n for n, s in _REGISTRY.items() if role is None or s.role == role)
