"""Configuration as data: YAML files under ``configs/`` loaded into typed objects.

A run config has one section per pipeline step; this module owns the ``data`` section and the
YAML loading. Unknown keys are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tfcxr.errors import ConfigError


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections, got {type(data).__name__}")
    return data


def from_mapping(cls, data: dict | None, where: str):
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys with a clear message."""
    data = dict(data or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(names)}")
    return cls(**data)


@dataclass
class DataConfig:
    """Which dataset to read and how to feed it.

    ``root: null`` with ``dataset: demo`` uses the embedded synthetic dataset. ``options`` go to the
    dataset's reader (e.g. ``policy`` for CheXpert, ``labels`` for PadChest, ``val_fraction``).
    """

    dataset: str = "demo"
    root: str | None = None
    options: dict = field(default_factory=dict)
    image_size: int = 224
    batch_size: int = 32
    cache: bool | str = False
    augment: dict = field(default_factory=dict)
    skip_bad: bool = False

    def __post_init__(self):
        if self.dataset != "demo" and not self.root:
            raise ConfigError(f"data.root is required for dataset {self.dataset!r}")
        if self.batch_size < 1 or self.image_size < 8:
            raise ConfigError("data.batch_size must be >= 1 and data.image_size >= 8")
        try:
            self.augment_config()
        except ValueError as e:
            raise ConfigError(f"data.augment: {e}") from None

    def augment_config(self):
        from tfcxr.data.augment import AugmentConfig

        return from_mapping(AugmentConfig, self.augment, "data.augment")

    def read_manifest(self, log=None):
        from tfcxr.data.readers import read_dataset

        return read_dataset(self.dataset, self.root, skip_bad=self.skip_bad, log=log, **self.options)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_data_config(path: str | Path | None = None, **overrides) -> DataConfig:
    """The ``data`` section of a config file (or the defaults), with non-None overrides applied."""
    section = dict(load_yaml(path).get("data", {})) if path else {}
    section.update({k: v for k, v in overrides.items() if v is not None})
    return from_mapping(DataConfig, section, f"{path or 'defaults'}: data")
