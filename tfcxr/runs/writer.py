"""Writing a run directory (the format is ``tfcxr.runs.layout``): what the run is, what it read,
and its models, each file written atomically so a killed run never leaves half a file."""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tfcxr.version import __version__
from tfcxr.backend import keras, tf
from tfcxr.config import RunConfig
from tfcxr.data.manifest import Manifest
from tfcxr.distill.distiller import Distiller
from tfcxr.io import atomic_path, write_text_atomic
from tfcxr.models.precision import as_float32
from tfcxr.preprocessing import PreprocessingSpec
from tfcxr.runs.layout import (CONFIG, KERAS_SUFFIX, LABELS, MANIFEST, PREPROCESSING, RUN_INFO,
                               RunError, read_info)


@dataclass
class RunResult:
    run_dir: Path
    best_model: Path
    last_model: Path
    best_val_auc: float
    epochs: int


def save_keras_model(model, path: Path) -> None:
    """Save ``model`` atomically, as float32 (a model trained under mixed precision included)."""
    with atomic_path(path) as tmp:
        as_float32(model).save(tmp)


class SaveModel(keras.callbacks.Callback):
    """Save the trained network (the Distiller's student) as ``best<suffix>`` when ``val_auc``
    improves and as ``last<suffix>`` when training ends; ``save(model, path)`` must write
    atomically, so a kill never leaves half a model (QAT models pass ``save_qat_model`` and
    ``.h5``). ``last`` is not rewritten every epoch: a killed run resumes from its backup, not
    from ``last``, and each save costs the demo student 0.7 s, 40 saves per run."""

    def __init__(self, run_dir: Path, monitor: str = "val_auc", suffix: str = KERAS_SUFFIX,
                 save=save_keras_model):
        super().__init__()
        self.run_dir, self.monitor, self.suffix, self.save = run_dir, monitor, suffix, save
        self.best = -math.inf

    def _network(self):
        return self.model.student if isinstance(self.model, Distiller) else self.model

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and not np.isnan(value) and value > self.best:
            self.best = value
            self.save(self._network(), self.run_dir / f"best{self.suffix}")

    def on_train_end(self, logs=None):
        self.save(self._network(), self.run_dir / f"last{self.suffix}")


class RunDirectory:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def info_file(self) -> Path:
        return self.path / RUN_INFO

    def info(self) -> dict:
        return read_info(self.path)

    def write_info(self, **fields) -> None:
        info = {**self.info(), **fields}
        write_text_atomic(self.info_file, json.dumps(info, indent=2, default=str) + "\n")

    def record_inputs(self, kind: str, config: RunConfig, manifest: Manifest,
                      spec: PreprocessingSpec, **extra) -> None:
        """Write the resolved config, labels, preprocessing, manifest and what this run is."""
        previous = self.info()
        if previous.get("status") == "complete":
            raise RunError(f"{self.path}: this run is already complete; choose another --out")
        config_text = yaml.safe_dump(config.to_dict(), sort_keys=False)
        if previous and (self.path / CONFIG).read_text() != config_text:
            raise RunError(f"{self.path}: holds a run with another config; resume it with the "
                           "same config or choose another --out")
        write_text_atomic(self.path / CONFIG, config_text)
        write_text_atomic(self.path / LABELS, "\n".join(manifest.label_names) + "\n")
        spec.save(self.path / PREPROCESSING)
        manifest.save_csv(self.path / MANIFEST)
        self.write_info(kind=kind, status="running", tfcxr=__version__, tensorflow=tf.__version__,
                        python=platform.python_version(), command=" ".join(sys.argv),
                        started=previous.get("started", time.strftime("%Y-%m-%dT%H:%M:%S")),
                        resumed=bool(previous), **extra)


def read_metrics(path: Path) -> list[dict]:
    frame = pd.read_csv(path).drop_duplicates("epoch", keep="last")  # a resumed epoch repeats
    return [{k: (float(v) if k != "epoch" else int(v)) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]
