"""A finished run directory, opened for what comes after training: QAT, export, evaluation.

Everything is read back from the files the run wrote (``config.yaml``, ``manifest.csv``,
``preprocessing.json``, ``run.json``, the models), so later steps use exactly the rows, splits,
labels and input contract the model was trained with, not whatever the config would read today.
Recorded paths (the teacher) are resolved against the run directory, not the working directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfcxr.backend import keras
from tfcxr.config import RunConfig, load_yaml
from tfcxr.data.manifest import Manifest
from tfcxr.preprocessing import PreprocessingSpec
from tfcxr.runs.layout import (CONFIG, MANIFEST, PREPROCESSING, QAT_DIR, QAT_SUFFIX, REQUIRED,
                               RunError, read_info, resolve_path, run_is_complete, trained_model)
from tfcxr.runs.loading import load_keras_model

ALL = "all"


def select_split(manifest: Manifest, name: str, where: str | Path) -> Manifest:
    """The rows of split ``name`` of ``manifest``, or every row for ``"all"``; an empty split
    is an error naming the splits there are."""
    if name == ALL:
        return manifest
    rows = np.flatnonzero(manifest.splits == name)
    if not len(rows):
        known = sorted(set(manifest.splits))
        raise RunError(f"{where}: split {name!r} is empty (splits: {', '.join(known)}, {ALL})")
    return manifest.select(rows)


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
        missing = [name for name in REQUIRED if not (path / name).is_file()]
        if missing:
            raise RunError(f"{path}: not a tfcxr run directory (missing {', '.join(missing)})")
        if not run_is_complete(path):
            raise RunError(f"{path}: the run has not finished; rerun its command to resume it")
        config = RunConfig.from_dict(load_yaml(path / CONFIG), str(path / CONFIG))
        manifest = Manifest.load_csv(path / MANIFEST, config.data.dataset)
        return cls(path, config, manifest, PreprocessingSpec.load(path / PREPROCESSING),
                   read_info(path))

    @property
    def label_names(self) -> list[str]:
        return list(self.manifest.label_names)

    @property
    def model_name(self) -> str:
        return self.info.get("model", "model")

    @property
    def mode(self) -> str:
        """How the student learned: ``online``, ``offline`` or ``student_only``."""
        return self.info.get("mode", "student_only")

    @property
    def teacher(self) -> Path | None:
        """The teacher model (online) or teacher predictions file (offline) it learned from,
        resolved against the run directory."""
        stored = self.info.get("teacher") or ""
        return resolve_path(stored, self.path) if stored else None

    @property
    def model_path(self) -> Path:
        return trained_model(self.path)

    def network(self) -> keras.Model:
        return load_keras_model(self.model_path)

    @property
    def qat_path(self) -> Path:
        return self.path / QAT_DIR

    def qat_model_path(self) -> Path | None:
        """The fine-tuned QAT model, when ``tfcxr qat`` has completed on this run."""
        return trained_model(self.qat_path, QAT_SUFFIX) if run_is_complete(self.qat_path) else None

    def split(self, name: str) -> Manifest:
        """The rows of one split, or every row for ``"all"``."""
        return select_split(self.manifest, name, self.path)
