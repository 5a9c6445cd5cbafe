"""Configuration as data: YAML files under ``configs/`` loaded into typed objects.

A run config has one section per pipeline step; this module owns the ``data`` section and the
YAML loading. Unknown keys are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tfcxr.data.augment import AugmentConfig
from tfcxr.data.readers import read_dataset
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
        return from_mapping(AugmentConfig, self.augment, "data.augment")

    def read_manifest(self, log=None):
        return read_dataset(self.dataset, self.root, skip_bad=self.skip_bad, log=log, **self.options)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_data_config(path: str | Path | None = None, **overrides) -> DataConfig:
    """The ``data`` section of a config file (or the defaults), with non-None overrides applied."""
    section = dict(load_yaml(path).get("data", {})) if path else {}
    section.update({k: v for k, v in overrides.items() if v is not None})
    return from_mapping(DataConfig, section, f"{path or 'defaults'}: data")


@dataclass
class TrainConfig:
    """How one model is optimised (a teacher with BCE, or the student by distillation)."""

    epochs: int = 10
    learning_rate: float = 1e-3
    optimizer: str = "adam"  # adam | adamw | sgd
    weight_decay: float = 0.0
    schedule: str = "cosine"  # cosine | constant
    backup_every_steps: int = 50  # mid-epoch checkpoint for resuming a killed run

    def __post_init__(self):
        if self.epochs < 1 or self.learning_rate <= 0 or self.backup_every_steps < 1:
            raise ConfigError("train: epochs and backup_every_steps must be >= 1, learning_rate > 0")
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise ConfigError(f"train.optimizer must be adam, adamw or sgd, got {self.optimizer!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"train.schedule must be cosine or constant, got {self.schedule!r}")


@dataclass
class ModelConfig:
    name: str
    weights: str | None = None  # a weights file, or a saved .keras model (teacher)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        if isinstance(self.train, dict):
            self.train = from_mapping(TrainConfig, self.train, f"{self.name}: train")


@dataclass
class DistillConfig:
    """``L = alpha * hard + (1 - alpha) * T^2 * soft`` (paper.md section 2)."""

    alpha: float = 0.5
    temperature: float = 2.0
    hard_loss: str = "bce"  # bce | focal
    soft_loss: str = "binary_kl"  # binary_kl | soft_bce | logit_mse | softmax_mse
    focal_gamma: float = 2.0

    def __post_init__(self):
        if not 0 <= self.alpha <= 1 or self.temperature <= 0:
            raise ConfigError("distill: alpha must be in [0, 1] and temperature > 0")


@dataclass
class RunConfig:
    """Everything a run needs; written next to what it produces as ``config.yaml``."""

    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    teacher: ModelConfig = field(default_factory=lambda: ModelConfig("densenet161"))
    student: ModelConfig = field(default_factory=lambda: ModelConfig("eeea_net_c2"))
    distill: DistillConfig = field(default_factory=DistillConfig)
    # Quantization-aware fine-tuning of the distilled student (tfcxr qat): short, low rate.
    qat: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=2, learning_rate=1e-4, schedule="constant"))
    strategy: str = "auto"  # auto (TF_CONFIG -> multi_worker, >1 GPU -> mirrored) | default | mirrored | multi_worker

    def __post_init__(self):
        if self.strategy not in ("auto", "default", "mirrored", "multi_worker"):
            raise ConfigError(f"strategy must be auto, default, mirrored or multi_worker, got {self.strategy!r}")

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> "RunConfig":
        data = dict(data)
        sections = {
            "data": lambda d: from_mapping(DataConfig, d, f"{where}: data"),
            "teacher": lambda d: from_mapping(ModelConfig, d, f"{where}: teacher"),
            "student": lambda d: from_mapping(ModelConfig, d, f"{where}: student"),
            "distill": lambda d: from_mapping(DistillConfig, d, f"{where}: distill"),
            "qat": lambda d: from_mapping(TrainConfig, d, f"{where}: qat"),
        }
        for key, build in sections.items():
            if key in data:
                data[key] = build(data[key])
        return from_mapping(cls, data, where)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def load_run_config(path: str | Path | None = None) -> RunConfig:
    """A run config from YAML; without a path, the demo config (the embedded default)."""
    if path is None:
        return RunConfig.from_dict(load_yaml(DEFAULT_CONFIG), str(DEFAULT_CONFIG)) if DEFAULT_CONFIG.is_file() else RunConfig()
    return RunConfig.from_dict(load_yaml(path), str(path))
