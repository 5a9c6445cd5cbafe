"""Quantization-aware fine-tuning of a distilled student, still against its teacher.

``qat_finetune(RUN)`` wraps the run's trained student as an app model (pixels in, so the int8
model's input is the bitmap's bytes), makes a tfmot QAT copy of it, and fine-tunes that copy with
the same Distiller loss as the run: online runs keep their frozen teacher (wrapped to take pixels
too), offline runs their teacher logits, student-only runs the hard loss alone. The result is a
run directory of its own, ``RUN/qat/``, with ``best.h5`` / ``last.h5`` (QAT models do not reload
from ``.keras``), metrics and ``run.json``; ``tfcxr export-tflite --mode int8`` converts it.
"""

from __future__ import annotations

from pathlib import Path

from tfcxr.backend import keras
from tfcxr.distill.distiller import Distiller
from tfcxr.distill.run import (RunDirectory, RunResult, SaveModel, _datasets, _fit,
                               distill_compile_kwargs, load_model, resolve_strategy)
from tfcxr.distill.teacher_predictions import align_teacher_logits
from tfcxr.distill.trained_run import TrainedRun
from tfcxr.export.app_model import build_app_model
from tfcxr.export.inputs import pixel_spec
from tfcxr.preprocessing import PreprocessingSpec
from tfcxr.quantize import calibrate_ranges, quantize_model, save_qat_model

CALIBRATION_BATCHES = 20


def _teacher_spec(teacher_path: Path, fallback: PreprocessingSpec) -> PreprocessingSpec:
    spec_file = teacher_path.parent / "preprocessing.json"
    return PreprocessingSpec.load(spec_file) if spec_file.is_file() else fallback


def qat_finetune(run_dir: str | Path, *, epochs: int | None = None,
                 learning_rate: float | None = None, verbose: int = 1) -> RunResult:
    """Fine-tune ``run_dir``'s student with fake quantisation; writes ``run_dir/qat/``."""
    run = TrainedRun.open(run_dir)
    config = run.config
    config.qat.epochs = epochs or config.qat.epochs
    config.qat.learning_rate = learning_rate or config.qat.learning_rate
    keras.utils.set_random_seed(config.seed)
    mode, teacher_ref = run.info.get("mode", "student_only"), run.info.get("teacher") or None
    out = RunDirectory(run.qat_path)
    spec = pixel_spec(run.spec)
    out.record_inputs("qat", config, run.manifest, spec, model=run.model_name,
                      source=str(run.model_path), mode=mode, teacher=teacher_ref or "")
    logits = align_teacher_logits(run.manifest, teacher_ref) if mode == "offline" else None
    train_ds, val_ds = _datasets(config, run.manifest, spec, logits)

    def factory():
        student = quantize_model(build_app_model(run.network(), run.spec))
        images = train_ds.map(lambda x, y, m: x[0] if isinstance(x, tuple) else x)
        calibrate_ranges(student, images.take(CALIBRATION_BATCHES))
        teacher = None
        if mode == "online":
            path = Path(teacher_ref)
            teacher = build_app_model(load_model(path), _teacher_spec(path, run.spec))
            teacher.trainable = False
        return Distiller(student, teacher)

    return _fit(out, factory, config.qat, train_ds, val_ds, run.label_names,
                resolve_strategy(config.strategy),
                distill_compile_kwargs(config, student_only=mode == "student_only"), verbose,
                saver=SaveModel(out.path, suffix=".h5", save=save_qat_model))
