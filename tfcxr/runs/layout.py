"""The run-directory format, written down once.

A run directory holds ``run.json`` (status, mode, versions, the teacher it learned from),
``config.yaml`` (resolved), ``manifest.csv`` (the rows and splits used), ``preprocessing.json``
(the input contract), ``labels.txt``, ``metrics.csv`` / ``metrics.json``, ``tensorboard/`` and the
models ``best<suffix>`` / ``last<suffix>`` (``.keras``; ``.h5`` for the QAT run in ``qat/``).
Paths a run records (its teacher, its teacher's predictions) are stored relative to the run
directory when they lie inside it and absolute otherwise, and are resolved against it, so a run
reads the same from any working directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tfcxr.errors import TfcxrError
from tfcxr.preprocessing import PreprocessingSpec

RUN_INFO = "run.json"
CONFIG = "config.yaml"
MANIFEST = "manifest.csv"
PREPROCESSING = "preprocessing.json"
LABELS = "labels.txt"
METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
BACKUP_DIR = "backup"
TENSORBOARD_DIR = "tensorboard"
QAT_DIR = "qat"
TEACHER_DIR = "teacher"
REQUIRED = (RUN_INFO, CONFIG, MANIFEST, PREPROCESSING)
KERAS_SUFFIX = ".keras"
QAT_SUFFIX = ".h5"


class RunError(TfcxrError):
    pass


def read_info(run_dir: str | Path) -> dict:
    info = Path(run_dir) / RUN_INFO
    return json.loads(info.read_text()) if info.is_file() else {}


def run_is_complete(run_dir: str | Path) -> bool:
    return read_info(run_dir).get("status") == "complete"


def trained_model(run_dir: str | Path, suffix: str = KERAS_SUFFIX) -> Path:
    """A finished run's model: ``best<suffix>``, or ``last<suffix>`` when validation AUC was
    never defined (e.g. a validation split without positives)."""
    best = Path(run_dir) / f"best{suffix}"
    return best if best.is_file() else Path(run_dir) / f"last{suffix}"


def owning_run(model_path: str | Path) -> Path | None:
    """The run a model file belongs to (``RUN/best.keras``, ``RUN/qat/best.h5``), or None."""
    folder = Path(model_path).resolve().parent
    if folder.name == QAT_DIR and (folder.parent / RUN_INFO).is_file():
        return folder.parent
    if (folder / RUN_INFO).is_file():
        return folder
    return None


def model_preprocessing(model_path: str | Path, image_size: int) -> PreprocessingSpec:
    """The input contract of a saved model: the ``preprocessing.json`` of its run (beside it),
    else tfcxr's default (ImageNet mean/std) at ``image_size``."""
    spec_file = Path(model_path).parent / PREPROCESSING
    return PreprocessingSpec.load(spec_file) if spec_file.is_file() else PreprocessingSpec(image_size=image_size)


def store_path(path: str | Path, run_dir: str | Path) -> str:
    """How a run records a path: relative to the run directory when inside it, else absolute."""
    path, run_dir = Path(path).resolve(), Path(run_dir).resolve()
    try:
        return str(path.relative_to(run_dir))
    except ValueError:
        return str(path)


def resolve_path(stored: str, run_dir: str | Path) -> Path:
    """A path recorded by ``store_path``, resolved against the run directory."""
    return Path(os.path.normpath(Path(run_dir).resolve() / stored))
