"""A finished run directory, opened for what comes after training: QAT, export, evaluation.

Everything is read back from the files the run wrote (``config.yaml``, ``manifest.csv``,
``preprocessing.json``, ``run.json``, the models), so later steps use exactly the rows, splits,
labels and input contract the model was trained with, not whatever the config would read today.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfcxr.config import RunConfig, load_yaml
from tfcxr.data.manifest import Manifest
from tfcxr.distill.run import RunError, load_model, run_is_complete, trained_model
from tfcxr.preprocessing import PreprocessingSpec

QAT_DIR = "qat"
_REQUIRED = ("run.json", "config.yaml", "manifest.csv", "preprocessing.json")


@dataclass
class TrainedRun:
    path: Path
    config: RunConfig
    manifest: Manifest
    spec: PreprocessingSpec
    info: dict

    @classmethod
    def open(cls, path: str | Path) -> "TrainedRun":
        path = Path(path)
        if not path.is_dir():
            raise RunError(f"{path}: no such run directory")
        missing = [name for name in _REQUIRED if not (path / name).is_file()]
        if missing:
            raise RunError(f"{path}: not a tfcxr run directory (missing {', '.join(missing)})")
        if not run_is_complete(path):
            raise RunError(f"{path}: the run has not finished; rerun its command to resume it")
        config = RunConfig.from_dict(load_yaml(path / "config.yaml"), str(path / "config.yaml"))
        manifest = Manifest.load_csv(path / "manifest.csv", config.data.dataset)
        info = json.loads((path / "run.json").read_text())
        return cls(path, config, manifest, PreprocessingSpec.load(path / "preprocessing.json"), info)

    @property
    def label_names(self) -> list[str]:
        return list(self.manifest.label_names)

    @property
    def model_name(self) -> str:
        return self.info.get("model", "model")

    @property
    def model_path(self) -> Path:
        return trained_model(self.path)

    def network(self):
        return load_model(self.model_path)

    @property
    def qat_path(self) -> Path:
        return self.path / QAT_DIR

    def qat_model_path(self) -> Path | None:
        """The fine-tuned QAT model, when ``tfcxr qat`` has completed on this run."""
        if not run_is_complete(self.qat_path):
            return None
        best = self.qat_path / "best.h5"
        return best if best.is_file() else self.qat_path / "last.h5"

    def split(self, name: str) -> Manifest:
        """The rows of one split, or every row for ``"all"``."""
        if name == "all":
            return self.manifest
        rows = np.flatnonzero(self.manifest.splits == name)
        if not len(rows):
            known = sorted(set(self.manifest.splits))
            raise RunError(f"{self.path}: split {name!r} is empty (splits: {', '.join(known)}, all)")
        return self.manifest.select(rows)
