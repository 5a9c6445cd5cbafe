"""JSON-safe values for reports: NaN becomes null (strict JSON has no NaN), NumPy becomes Python."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np


def jsonable(value):
    """Recursively convert dataclasses, mappings, sequences, NumPy values and paths."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(value) else float(value)
    if isinstance(value, Path):
        return str(value)
    return value


def nan_if_none(value) -> float:
    """The inverse for one number read back from JSON."""
    return float("nan") if value is None else float(value)
