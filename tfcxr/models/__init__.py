"""The model zoo: ``create(name, ...)`` and ``list_models()`` over a registry of builders."""

from tfcxr.models.registry import ModelSpec, UnknownModelError, get_spec, list_models, register_model

__all__ = ["ModelSpec", "UnknownModelError", "get_spec", "list_models", "register_model"]
