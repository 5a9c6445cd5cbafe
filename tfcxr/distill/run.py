"""Training runs that survive: a run directory that says what it did next to what it produced.

``train_teacher`` fits a teacher with masked BCE; ``distill`` fits a student against a frozen
teacher (online), against precomputed teacher logits (offline), or alone (``student_only``, the
paper's baseline). All three are one code path: a ``Distiller`` whose teacher may be absent.

A run directory holds ``config.yaml`` (resolved), ``labels.txt``, ``preprocessing.json``,
``manifest.csv`` (the rows and splits used), ``metrics.csv`` / ``metrics.json`` (per epoch,
with per-label validation AUC), ``tensorboard/``, ``best.keras`` and ``last.keras`` (the student,
or the teacher for a teacher run) and ``run.json`` (status, timings, versions). A mid-epoch backup
(``backup/``) lets the same command resume a killed run; it is deleted when the run completes.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from tfcxr import __version__
from tfcxr.backend import keras, tf
from tfcxr.config import RunConfig, TrainConfig
from tfcxr.data.manifest import Manifest
from tfcxr.data.pipeline import build_dataset
from tfcxr.distill.distiller import Distiller
from tfcxr.distill.teacher_predictions import (align_teacher_logits, predict_logits,
                                               write_teacher_logits)
from tfcxr.errors import TfcxrError
from tfcxr.io import atomic_path, write_text_atomic
from tfcxr.metrics import AUCCallback
from tfcxr.models import create, get_spec
from tfcxr.preprocessing import PreprocessingSpec

log = logging.getLogger("tfcxr.run")


class RunError(TfcxrError):
    pass


@dataclass
class RunResult:
    run_dir: Path
    best_model: Path
    last_model: Path
    best_val_auc: float
    epochs: int


def resolve_strategy(name: str) -> tf.distribute.Strategy:
    """``auto``: MultiWorkerMirrored under TF_CONFIG, Mirrored with several GPUs, else default."""
    import os

    if name == "auto":
        if os.environ.get("TF_CONFIG"):
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    return {
        "default": tf.distribute.get_strategy,
        "mirrored": tf.distribute.MirroredStrategy,
        "multi_worker": tf.distribute.MultiWorkerMirroredStrategy,
    }[name]()


def make_optimizer(train: TrainConfig, steps_per_epoch: int):
    rate = train.learning_rate
    if train.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(train.learning_rate,
                                                      decay_steps=train.epochs * steps_per_epoch)
    if train.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=train.weight_decay)
    if train.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True)
    return keras.optimizers.Adam(rate)


def save_keras_model(model, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(tmp)


class SaveModel(keras.callbacks.Callback):
    """Save the trained network (the Distiller's student) as ``last<suffix>`` every epoch and as
    ``best<suffix>`` when ``val_auc`` improves; ``save(model, path)`` must write atomically, so a
    kill never leaves half a model (QAT models pass ``save_qat_model`` and ``.h5``)."""

    def __init__(self, run_dir: Path, monitor: str = "val_auc", suffix: str = ".keras",
                 save=save_keras_model):
        super().__init__()
        self.run_dir, self.monitor, self.suffix, self.save = run_dir, monitor, suffix, save
        self.best = -math.inf

    def _network(self):
        return self.model.student if isinstance(self.model, Distiller) else self.model

    def on_epoch_end(self, epoch, logs=None):
        self.save(self._network(), self.run_dir / f"last{self.suffix}")
        value = (logs or {}).get(self.monitor)
        if value is not None and not np.isnan(value) and value > self.best:
            self.best = value
            self.save(self._network(), self.run_dir / f"best{self.suffix}")


def run_is_complete(path: str | Path) -> bool:
    info = Path(path) / "run.json"
    return info.is_file() and json.loads(info.read_text()).get("status") == "complete"


def trained_model(path: str | Path) -> Path:
    """A finished run's model: ``best.keras``, or ``last.keras`` when validation AUC was never
    defined (e.g. a validation split without positives)."""
    best = Path(path) / "best.keras"
    return best if best.is_file() else Path(path) / "last.keras"


class RunDirectory:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def info_file(self) -> Path:
        return self.path / "run.json"

    def info(self) -> dict:
        return json.loads(self.info_file.read_text()) if self.info_file.is_file() else {}

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
        if previous and (self.path / "config.yaml").read_text() != config_text:
            raise RunError(f"{self.path}: holds a run with another config; resume it with the "
                           "same config or choose another --out")
        write_text_atomic(self.path / "config.yaml", config_text)
        write_text_atomic(self.path / "labels.txt", "\n".join(manifest.label_names) + "\n")
        spec.save(self.path / "preprocessing.json")
        manifest.save_csv(self.path / "manifest.csv")
        self.write_info(kind=kind, status="running", tfcxr=__version__, tensorflow=tf.__version__,
                        python=platform.python_version(), command=" ".join(sys.argv),
                        started=previous.get("started", time.strftime("%Y-%m-%dT%H:%M:%S")),
                        resumed=bool(previous), **extra)


def _datasets(config: RunConfig, manifest: Manifest, spec: PreprocessingSpec, teacher_logits=None):
    """Training and validation datasets; with ``teacher_logits`` ([N, C], manifest order) the
    images come paired with their teacher logits, for offline distillation."""
    data = config.data
    out = {}
    for split, training in (("train", True), ("val", False)):
        rows = np.flatnonzero(manifest.splits == split)
        if not len(rows):
            raise RunError(f"{manifest.root}: the {split!r} split is empty")
        part = manifest.select(rows)
        ds = build_dataset(part, spec, training=training, batch_size=data.batch_size,
                           augment=data.augment_config() if training else None,
                           shuffle_seed=config.seed, cache=data.cache,
                           include_index=teacher_logits is not None)
        if teacher_logits is not None:
            table = tf.constant(teacher_logits[rows])
            ds = ds.map(lambda x, y, m: ((x[0], tf.gather(table, x[1])), y, m))
        out[split] = ds
    return out["train"], out["val"]


def _fit(run: RunDirectory, distiller_factory, train_cfg: TrainConfig, train_ds, val_ds,
         label_names, strategy, compile_kwargs: dict, verbose: int,
         saver: SaveModel | None = None) -> RunResult:
    steps = int(train_ds.cardinality())
    with strategy.scope():
        distiller = distiller_factory()
        distiller.compile(optimizer=make_optimizer(train_cfg, steps), **compile_kwargs)
        # BackupAndRestore can only restore into a built model: build it on a zero batch.
        distiller(tf.nest.map_structure(lambda s: tf.zeros([1, *s.shape[1:]], s.dtype),
                                        train_ds.element_spec[0]))
    callbacks = [
        AUCCallback(val_ds, label_names),  # first: puts val_auc into the logs the others read
        saver or SaveModel(run.path),
        keras.callbacks.CSVLogger(str(run.path / "metrics.csv"), append=True),
        keras.callbacks.TensorBoard(str(run.path / "tensorboard"), write_graph=False),
        keras.callbacks.BackupAndRestore(str(run.path / "backup"),
                                         save_freq=train_cfg.backup_every_steps),
    ]
    started = time.time()
    history = distiller.fit(train_ds, validation_data=val_ds, epochs=train_cfg.epochs,
                            callbacks=callbacks, verbose=verbose)
    backup = run.path / "backup"
    if backup.is_dir() and not any(backup.iterdir()):  # Keras deletes its files, not the folder
        backup.rmdir()
    metrics = _read_metrics(run.path / "metrics.csv")
    write_text_atomic(run.path / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    aucs = [row["val_auc"] for row in metrics if not np.isnan(row.get("val_auc", np.nan))]
    best = max(aucs) if aucs else float("nan")
    run.write_info(status="complete", finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                   fit_seconds=round(time.time() - started, 1), best_val_auc=best,
                   epochs=len(metrics), history_keys=sorted(history.history))
    suffix = saver.suffix if saver else ".keras"
    return RunResult(run.path, run.path / f"best{suffix}", run.path / f"last{suffix}", best,
                     len(metrics))


def _read_metrics(path: Path) -> list[dict]:
    import pandas as pd

    frame = pd.read_csv(path).drop_duplicates("epoch", keep="last")  # a resumed epoch repeats
    return [{k: (float(v) if k != "epoch" else int(v)) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]


def prepare(config: RunConfig, model_name: str, image_size: int | None = None):
    """Seed everything, read the manifest and the model's preprocessing at the data's size."""
    keras.utils.set_random_seed(config.seed)
    manifest = config.data.read_manifest()
    spec = get_spec(model_name).preprocessing.with_size(image_size or config.data.image_size)
    return manifest, spec


def train_teacher(config: RunConfig, out: str | Path, verbose: int = 1) -> RunResult:
    """Fit ``config.teacher`` on the data with masked BCE (the Distiller without a teacher)."""
    run = RunDirectory(out)
    manifest, spec = prepare(config, config.teacher.name)
    run.record_inputs("teacher", config, manifest, spec, model=config.teacher.name)
    train_ds, val_ds = _datasets(config, manifest, spec)
    strategy = resolve_strategy(config.strategy)

    def factory():
        model = create(config.teacher.name, num_classes=manifest.num_classes,
                       input_shape=spec.input_shape, weights=config.teacher.weights)
        return Distiller(model)

    return _fit(run, factory, config.teacher.train, train_ds, val_ds, manifest.label_names,
                strategy, {"student_loss_fn": "bce", "alpha": 1.0}, verbose)


def load_model(path: str | Path):
    """A saved tfcxr model (``.keras``): custom layers are registered, no custom_objects needed."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path}: model not found")
    try:
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError) as e:
        raise RunError(f"{path}: cannot load the model: {e}") from None


def distill(config: RunConfig, out: str | Path, *, teacher_model: str | Path | None = None,
            teacher_predictions: str | Path | None = None, student_only: bool = False,
            verbose: int = 1) -> RunResult:
    """Fit ``config.student``: online from ``teacher_model``, offline from a predictions file,
    or alone. Give exactly one of the three."""
    if sum(x is not None and x is not False for x in (teacher_model, teacher_predictions, student_only)) != 1:
        raise RunError("give exactly one of a teacher model, teacher predictions or student_only")
    run = RunDirectory(out)
    manifest, spec = prepare(config, config.student.name)
    teacher_source = teacher_model
    if teacher_model is not None and config.distill.precompute_teacher:
        teacher_predictions, teacher_model = run.path / TEACHER_LOGITS, None
    mode = "student_only" if student_only else "offline" if teacher_predictions else "online"
    run.record_inputs("student", config, manifest, spec, model=config.student.name, mode=mode,
                      teacher=str(teacher_model or teacher_predictions or ""),
                      teacher_model=str(teacher_source or ""))
    if teacher_source is not None and teacher_model is None and not Path(teacher_predictions).is_file():
        precompute_teacher_logits(config, manifest, teacher_source, teacher_predictions)
    logits = align_teacher_logits(manifest, teacher_predictions) if teacher_predictions else None
    train_ds, val_ds = _datasets(config, manifest, spec, logits)
    strategy = resolve_strategy(config.strategy)

    def factory():
        student = create(config.student.name, num_classes=manifest.num_classes,
                         input_shape=spec.input_shape, weights=config.student.weights)
        teacher = None
        if teacher_model is not None:
            path = Path(teacher_model)
            teacher = (load_model(path) if path.suffix == ".keras" or path.is_dir() else
                       create(config.teacher.name, num_classes=manifest.num_classes,
                              input_shape=spec.input_shape, weights=path))
        if teacher is not None and teacher.output_shape[-1] != manifest.num_classes:
            raise RunError(f"{teacher_model}: the teacher has {teacher.output_shape[-1]} outputs, "
                           f"the data {manifest.num_classes} labels")
        return Distiller(student, teacher)

    return _fit(run, factory, config.student.train, train_ds, val_ds, manifest.label_names,
                strategy, distill_compile_kwargs(config, student_only), verbose)


TEACHER_LOGITS = "teacher_logits.csv"


def precompute_teacher_logits(config: RunConfig, manifest: Manifest, teacher_model: str | Path,
                              out: Path) -> Path:
    """Score every film of ``manifest`` once with a saved teacher (``distill.precompute_teacher``),
    at the teacher's own preprocessing when its run recorded one."""
    path = Path(teacher_model)
    if not (path.suffix == ".keras" or path.is_dir()):
        raise RunError(f"{path}: distill.precompute_teacher needs a saved teacher model (.keras)")
    spec_file = path.parent / "preprocessing.json"
    spec = (PreprocessingSpec.load(spec_file) if spec_file.is_file()
            else get_spec(config.teacher.name).preprocessing.with_size(config.data.image_size))
    log.info("scoring %d films once with the teacher %s", len(manifest), path)
    logits = predict_logits(load_model(path), manifest, spec, config.data.batch_size)
    return write_teacher_logits(out, manifest.image_ids, manifest.label_names, logits)


def distill_compile_kwargs(config: RunConfig, student_only: bool) -> dict:
    """The Distiller's loss settings from ``config.distill`` (hard loss alone without a teacher)."""
    d = config.distill
    return {"student_loss_fn": d.hard_loss, "distillation_loss_fn": d.soft_loss,
            "alpha": 1.0 if student_only else d.alpha, "temperature": d.temperature,
            "focal_gamma": d.focal_gamma}
