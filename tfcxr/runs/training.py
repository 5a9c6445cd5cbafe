"""Training runs that survive: a run directory that says what it did next to what it produced.

``train_teacher`` fits a teacher with masked BCE; ``distill`` fits a student against a frozen
teacher (online), against precomputed teacher logits (offline), or alone (``student_only``, the
paper's baseline). All three are one code path: a ``Distiller`` whose teacher may be absent.
``distill_with_teacher_first`` is what ``tfcxr distill`` runs: without a teacher (or its
predictions) it first trains one in ``OUT/teacher``. The directory format is
``tfcxr.runs.layout``; a mid-epoch backup (``backup/``) lets the same command resume a killed
run and is deleted when the run completes.

A teacher always sees its own preprocessing (``load_teacher``): its ``preprocessing.json``, or
its architecture's registry spec, not the student's (resnet50 uses Caffe preprocessing).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tfcxr.backend import keras, start_devices, tf
from tfcxr.config import RunConfig, TrainConfig
from tfcxr.data.manifest import Manifest
from tfcxr.data.pipeline import build_dataset
from tfcxr.distill.distiller import Distiller
from tfcxr.distill.teacher_predictions import (align_teacher_logits, predict_logits,
                                               write_teacher_logits)
from tfcxr.errors import TfcxrError
from tfcxr.io import write_text_atomic
from tfcxr.metrics import AUCCallback
from tfcxr.models import create, get_spec
from tfcxr.models.app_model import renormalized
from tfcxr.models.precision import precision_policy
from tfcxr.preprocessing import PreprocessingSpec
from tfcxr.runs.layout import (BACKUP_DIR, KERAS_SUFFIX, METRICS_CSV, METRICS_JSON, TEACHER_DIR,
                               TENSORBOARD_DIR, RunError, model_preprocessing, run_is_complete,
                               store_path, trained_model)
from tfcxr.runs.loading import load_keras_model
from tfcxr.runs.writer import RunDirectory, RunResult, SaveModel, read_metrics


def resolve_strategy(name: str) -> tf.distribute.Strategy:
    """``auto``: MultiWorkerMirrored under TF_CONFIG, Mirrored with several GPUs, else default."""
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


def datasets(config: RunConfig, manifest: Manifest, spec: PreprocessingSpec, teacher_logits=None):
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


def start(config: RunConfig, verbose: int) -> tf.distribute.Strategy:
    """Start the devices with the config's settings, say what the run trains on, and pick the
    distribution strategy."""
    devices = start_devices(config.memory_growth, config.visible_gpus)
    strategy = resolve_strategy(config.strategy)
    if verbose:
        print(f"training on {', '.join(devices)} ({type(strategy).__name__}, "
              f"{strategy.num_replicas_in_sync} replica(s)); precision {config.precision}, "
              f"jit_compile {config.jit_compile}", flush=True)
    return strategy


def fit(run: RunDirectory, distiller_factory, train_cfg: TrainConfig, train_ds, val_ds,
        label_names, strategy, compile_kwargs: dict, verbose: int, *, seed: int,
        saver: SaveModel | None = None, precision: str = "float32",
        jit_compile: bool = False) -> RunResult:
    """Fit the Distiller ``distiller_factory()`` builds (under the dtype policy ``precision``),
    with checkpoints, logs and a backup, and mark the run complete.

    ``seed`` is set again right before the models are built: whatever ran before in the process
    (scoring films with a teacher built from its config, whose initialisers draw from the global
    generator) must not change the student's initial weights. Without it the main job's student
    differed from the same student distilled from the main job's own logits file."""
    steps = int(train_ds.cardinality())
    keras.utils.set_random_seed(seed)
    with strategy.scope(), precision_policy(precision):
        distiller = distiller_factory()
        distiller.compile(optimizer=make_optimizer(train_cfg, steps), jit_compile=jit_compile,
                          **compile_kwargs)
        # BackupAndRestore can only restore into a built model: build it on a zero batch.
        distiller(tf.nest.map_structure(lambda s: tf.zeros([1, *s.shape[1:]], s.dtype),
                                        train_ds.element_spec[0]))
    saver = saver or SaveModel(run.path)
    callbacks = [
        AUCCallback(val_ds, label_names),  # first: puts val_auc into the logs the others read
        saver,
        keras.callbacks.CSVLogger(str(run.path / METRICS_CSV), append=True),
        keras.callbacks.TensorBoard(str(run.path / TENSORBOARD_DIR), write_graph=False),
        keras.callbacks.BackupAndRestore(str(run.path / BACKUP_DIR),
                                         save_freq=train_cfg.backup_every_steps),
    ]
    started = time.time()
    history = distiller.fit(train_ds, validation_data=val_ds, epochs=train_cfg.epochs,
                            callbacks=callbacks, verbose=verbose)
    backup = run.path / BACKUP_DIR
    if backup.is_dir() and not any(backup.iterdir()):  # Keras deletes its files, not the folder
        backup.rmdir()
    metrics = read_metrics(run.path / METRICS_CSV)
    write_text_atomic(run.path / METRICS_JSON, json.dumps(metrics, indent=2) + "\n")
    aucs = [row["val_auc"] for row in metrics if not np.isnan(row.get("val_auc", np.nan))]
    best = max(aucs) if aucs else float("nan")
    run.write_info(status="complete", finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                   fit_seconds=round(time.time() - started, 1), best_val_auc=best,
                   epochs=len(metrics), history_keys=sorted(history.history))
    return RunResult(run.path, run.path / f"best{saver.suffix}", run.path / f"last{saver.suffix}",
                     best, len(metrics))


def prepare(config: RunConfig, model_name: str, image_size: int | None = None):
    """Seed everything, read the manifest and the model's preprocessing at the data's size."""
    keras.utils.set_random_seed(config.seed)
    manifest = config.data.read_manifest()
    spec = get_spec(model_name).preprocessing.with_size(image_size or config.data.image_size)
    return manifest, spec


def load_teacher(reference: str | Path, config: RunConfig, num_classes: int,
                 image_size: int) -> tuple[keras.Model, PreprocessingSpec]:
    """A trained teacher and its own input contract: a ``.keras`` file (or SavedModel folder)
    with the ``preprocessing.json`` of its run, or a weights file for ``config.teacher.name``
    with that architecture's registry preprocessing."""
    path = Path(reference)
    if path.suffix == KERAS_SUFFIX or path.is_dir():
        teacher = load_keras_model(path)
        spec = model_preprocessing(path, int(teacher.input_shape[1]))
    else:
        spec = get_spec(config.teacher.name).preprocessing.with_size(image_size)
        teacher = create(config.teacher.name, num_classes=num_classes,
                         input_shape=spec.input_shape, weights=path)
    if teacher.output_shape[-1] != num_classes:
        raise RunError(f"{reference}: the teacher has {teacher.output_shape[-1]} outputs, "
                       f"the data {num_classes} labels")
    return teacher, spec


def teacher_for_inputs(reference: str | Path, config: RunConfig, num_classes: int,
                       input_spec: PreprocessingSpec) -> keras.Model:
    """The teacher as the Distiller runs it: fed batches normalised with ``input_spec`` (the
    student's, or pixels for QAT), it converts them to its own normalisation first."""
    teacher, spec = load_teacher(reference, config, num_classes, input_spec.image_size)
    try:
        return renormalized(teacher, spec, input_spec)
    except TfcxrError as e:
        raise RunError(f"{reference}: {e}") from None


def train_teacher(config: RunConfig, out: str | Path, verbose: int = 1) -> RunResult:
    """Fit ``config.teacher`` on the data with masked BCE (the Distiller without a teacher)."""
    run = RunDirectory(out)
    manifest, spec = prepare(config, config.teacher.name)
    run.record_inputs("teacher", config, manifest, spec, model=config.teacher.name)
    train_ds, val_ds = datasets(config, manifest, spec)
    strategy = start(config, verbose)

    def factory():
        model = create(config.teacher.name, num_classes=manifest.num_classes,
                       input_shape=spec.input_shape, weights=config.teacher.weights)
        return Distiller(model)

    return fit(run, factory, config.teacher.train, train_ds, val_ds, manifest.label_names,
               strategy, {"student_loss_fn": "bce", "alpha": 1.0}, verbose, seed=config.seed,
               precision=config.precision, jit_compile=config.jit_compile)


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
    teacher_ref = teacher_model or teacher_predictions
    run.record_inputs("student", config, manifest, spec, model=config.student.name, mode=mode,
                      teacher=store_path(teacher_ref, run.path) if teacher_ref else "",
                      teacher_model=store_path(teacher_source, run.path) if teacher_source else "")
    if teacher_source is not None and teacher_model is None and not Path(teacher_predictions).is_file():
        precompute_teacher_logits(config, manifest, teacher_source, Path(teacher_predictions))
    logits = align_teacher_logits(manifest, teacher_predictions) if teacher_predictions else None
    train_ds, val_ds = datasets(config, manifest, spec, logits)
    strategy = start(config, verbose)

    def factory():
        student = create(config.student.name, num_classes=manifest.num_classes,
                         input_shape=spec.input_shape, weights=config.student.weights)
        teacher = (teacher_for_inputs(teacher_model, config, manifest.num_classes, spec)
                   if teacher_model is not None else None)
        return Distiller(student, teacher)

    return fit(run, factory, config.student.train, train_ds, val_ds, manifest.label_names,
               strategy, distill_compile_kwargs(config, student_only), verbose, seed=config.seed,
               precision=config.precision, jit_compile=config.jit_compile)


TEACHER_LOGITS = "teacher_logits.csv"


def precompute_teacher_logits(config: RunConfig, manifest: Manifest, teacher_model: str | Path,
                              out: Path) -> Path:
    """Score every film of ``manifest`` once, un-augmented, with the frozen teacher at its own
    preprocessing (``distill.precompute_teacher``); written as a teacher-predictions CSV."""
    teacher, spec = load_teacher(teacher_model, config, manifest.num_classes, config.data.image_size)
    logits = predict_logits(teacher, manifest, spec, config.data.batch_size)
    return write_teacher_logits(out, manifest.image_ids, manifest.label_names, logits)


def distill_with_teacher_first(config: RunConfig, out: str | Path, *,
                               teacher_model: str | Path | None = None,
                               teacher_predictions: str | Path | None = None,
                               student_only: bool = False, verbose: int = 1,
                               notify: Callable[[str], None] = lambda message: None
                               ) -> dict[str, RunResult]:
    """``distill``, first training ``config.teacher`` in ``out/teacher`` when neither a teacher
    nor its predictions are given (and the student is not alone). A finished teacher run there is
    reused, so the same call resumes. Returns ``{"teacher": ..., "student": ...}`` results for
    what was trained now; ``notify`` receives one line per step."""
    results = {}
    if not (teacher_model or teacher_predictions or student_only):
        teacher_run = Path(out) / TEACHER_DIR
        if not run_is_complete(teacher_run):
            notify(f"no teacher given: training {config.teacher.name} first ({teacher_run})")
            results["teacher"] = train_teacher(config, teacher_run, verbose=verbose)
        teacher_model = trained_model(teacher_run)
    results["student"] = distill(config, out, teacher_model=teacher_model,
                                 teacher_predictions=teacher_predictions,
                                 student_only=student_only, verbose=verbose)
    return results


def distill_compile_kwargs(config: RunConfig, student_only: bool) -> dict:
    """The Distiller's loss settings from ``config.distill`` (hard loss alone without a teacher)."""
    d = config.distill
    return {"student_loss_fn": d.hard_loss, "distillation_loss_fn": d.soft_loss,
            "alpha": 1.0 if student_only else d.alpha, "temperature": d.temperature,
            "focal_gamma": d.focal_gamma}
