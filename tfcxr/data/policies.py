"""How uncertain (-1) and blank label cells become targets and loss masks.

CheXpert-style labels are 1 (positive), 0 (negative), -1 (uncertain) or blank (not mentioned).
A policy maps the two unsure cases to one of three actions per label:
``ignore`` (mask the cell out of the supervised loss), ``zeros`` (negative) or ``ones`` (positive).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tfcxr.errors import ConfigError

ACTIONS = ("ignore", "zeros", "ones")

# Irvin et al. (CheXpert, 2019): U-Ones worked best for Atelectasis and Edema, U-Zeros elsewhere.
_PRESETS = {
    "u-mixed": {"default": "zeros", "per_label": {"Atelectasis": "ones", "Edema": "ones"}},
}


@dataclass(frozen=True)
class UncertaintyPolicy:
    default: str = "ignore"  # action for -1 cells of labels not in per_label
    per_label: dict[str, str] = field(default_factory=dict)
    blank: str = "zeros"  # action for blank cells

    def __post_init__(self):
        for where, action in [("default", self.default), ("blank", self.blank),
                              *self.per_label.items()]:
            if action not in ACTIONS:
                raise ConfigError(f"uncertainty policy: {where} -> {action!r} is not one of {ACTIONS}")

    @classmethod
    def parse(cls, spec) -> "UncertaintyPolicy":
        """From a policy, a name (``ignore``, ``zeros``, ``ones``, ``u-mixed``) or a config dict."""
        if isinstance(spec, cls):
            return spec
        if spec is None:
            return cls()
        if isinstance(spec, str):
            if spec in ACTIONS:
                return cls(default=spec)
            if spec in _PRESETS:
                return cls(**_PRESETS[spec])
            raise ConfigError(f"unknown uncertainty policy {spec!r}; use one of "
                              f"{ACTIONS + tuple(_PRESETS)} or a mapping")
        if isinstance(spec, dict):
            unknown = set(spec) - {"default", "per_label", "blank"}
            if unknown:
                raise ConfigError(f"uncertainty policy: unknown keys {sorted(unknown)}")
            return cls(**spec)
        raise ConfigError(f"cannot read an uncertainty policy from {spec!r}")

    def action_for(self, label: str) -> str:
        return self.per_label.get(label, self.default)

    def apply(self, values: np.ndarray, label_names) -> tuple[np.ndarray, np.ndarray]:
        """Map a [N, C] array of 1 / 0 / -1 / NaN (blank) to (targets, mask)."""
        values = np.asarray(values, dtype=np.float32)
        targets = np.where(values == 1, 1.0, 0.0).astype(np.float32)
        mask = np.ones_like(targets)
        for j, label in enumerate(label_names):
            for cells, action in ((values[:, j] == -1, self.action_for(label)),
                                  (np.isnan(values[:, j]), self.blank)):
                if action == "ignore":
                    mask[cells, j] = 0.0
                else:
                    targets[cells, j] = 1.0 if action == "ones" else 0.0
        return targets, mask

    def describe(self) -> str:
        per = ", ".join(f"{k}: {v}" for k, v in sorted(self.per_label.items()))
        return f"uncertain -> {self.default}" + (f" ({per})" if per else "") + f"; blank -> {self.blank}"
