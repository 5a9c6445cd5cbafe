"""Quantization-aware fine-tuning of a distilled student, still against its teacher.

``qat_finetune(RUN)`` wraps the run's trained student as an app model (pixels in, so the int8
model's input is the bitmap's bytes), makes a tfmot QAT copy of it, and fine-tunes that copy with
the same Distiller loss as the run: online runs keep their frozen teacher (fed the pixels in its
own normalisation, as in distillation), offline runs their teacher logits, student-only runs the
hard loss alone. The result is a run directory of its own, ``RUN/qat/``, with ``best.h5`` /
``last.h5`` (QAT models do not reload from ``.keras``), metrics and ``run.json``;
``tfcxr export-tflite --mode int8`` converts it.
"""

from __future__ import annotations

from pathlib import Path

from tfcxr.backend import keras
from tfcxr.distill.distiller import Distiller
from tfcxr.distill.teacher_predictions import align_teacher_logits
from tfcxr.models.app_model import build_app_model, pixel_spec
from tfcxr.quantize import calibrate_ranges, quantize_model, save_qat_model
from tfcxr.runs.layout import QAT_SUFFIX, RunError, store_path
from tfcxr.runs.trained import TrainedRun
from tfcxr.runs.training import (datasets, distill_compile_kwargs, fit, resolve_strategy,
                                 teacher_for_inputs)
from tfcxr.runs.writer import RunDirectory, RunResult, SaveModel

CALIBRATION_BATCHES = 20


def qat_finetune(run_dir: str | Path, *, epochs: int | None = None,
                 learning_rate: float | None = None, verbose: int = 1) -> RunResult:
    """Fine-tune ``run_dir``'s student with fake quantisation; writes ``run_dir/qat/``."""
    run = TrainedRun.open(run_dir)
    config = run.config
    config.qat.epochs = epochs or config.qat.epochs
    config.qat.learning_rate = learning_rate or config.qat.learning_rate
    keras.utils.set_random_seed(config.seed)
    mode, teacher = run.mode, run.teacher
    if mode != "student_only" and (teacher is None or not teacher.exists()):
        raise RunError(f"{run.path}: its teacher {teacher} (run.json) is not there any more")
    out = RunDirectory(run.qat_path)
    spec = pixel_spec(run.spec)
    out.record_inputs("qat", config, run.manifest, spec, model=run.model_name,
                      source=store_path(run.model_path, out.path), mode=mode,
                      teacher=store_path(teacher, out.path) if teacher else "")
    logits = align_teacher_logits(run.manifest, teacher) if mode == "offline" else None
    train_ds, val_ds = datasets(config, run.manifest, spec, logits)

    def factory():
        student = quantize_model(build_app_model(run.network(), run.spec))
        images = train_ds.map(lambda x, y, m: x[0] if isinstance(x, tuple) else x)
        calibrate_ranges(student, images.take(CALIBRATION_BATCHES))
        online = mode == "online"
        return Distiller(student, teacher_for_inputs(teacher, config, len(run.label_names), spec)
                         if online else None)

    return fit(out, factory, config.qat, train_ds, val_ds, run.label_names,
               resolve_strategy(config.strategy),
               distill_compile_kwargs(config, student_only=mode == "student_only"), verbose,
               seed=config.seed, saver=SaveModel(out.path, suffix=QAT_SUFFIX, save=save_qat_model))
