"""Check a (GPU) machine before a full run: the paper's configuration on the demo data.

Starts the devices (optionally with GPU memory growth), prepares the demo films at the training
size, then times, in films/s: the data pipeline decoding PNGs, the pipeline reading prepared
shards, training the teacher, and distilling the student from it (online), each for ``--steps``
batches under ``--precision`` and ``--jit-compile``. Runs on a CPU too, slowly.

    python benchmarks/gpu_check.py [--config tfcxr/configs/paper/nih.yaml] [--steps 300]
        [--precision mixed_float16] [--jit-compile] [--memory-growth] [--json out.json]

Precision defaults to mixed_float16 with a GPU and mixed_bfloat16 without. The config gives the
models, batch size, image size, losses and augmentation; its data section is replaced by the
demo dataset (written to the user cache on first use).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from tfcxr.backend import keras, start_devices, tf
from tfcxr.config import PRECISIONS, load_run_config
from tfcxr.data.pipeline import build_dataset
from tfcxr.data.prepare import prepare_films
from tfcxr.data.prepared import PreparedFilms
from tfcxr.distill import Distiller
from tfcxr.runs.training import distill_compile_kwargs, make_optimizer
from tfcxr.models import create, get_spec
from tfcxr.models.precision import precision_policy

REPO = Path(__file__).resolve().parents[1]


def pipeline_rate(ds, steps: int) -> float:
    iterator = iter(ds.repeat())
    next(iterator)  # start the threads
    start, films = time.perf_counter(), 0
    for _ in range(steps):
        films += int(next(iterator)[0].shape[0])
    return films / (time.perf_counter() - start)


def fit_rate(distiller, ds, steps: int) -> float:
    """films/s of ``fit`` over ``steps`` batches, after a short warm-up (tracing, compiling)."""
    data = ds.repeat()
    batch = int(next(iter(ds))[0].shape[0])
    distiller.fit(data, steps_per_epoch=min(2, steps), epochs=1, verbose=0)
    start = time.perf_counter()
    distiller.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "tfcxr" / "configs" / "paper" / "nih.yaml")
    parser.add_argument("--steps", type=int, default=300, help="timed batches per measurement")
    parser.add_argument("--image-size", type=int, help="override data.image_size (224)")
    parser.add_argument("--batch-size", type=int, help="override data.batch_size")
    parser.add_argument("--teacher", help="override teacher.name (densenet161)")
    parser.add_argument("--precision", choices=PRECISIONS)
    parser.add_argument("--jit-compile", action="store_true")
    parser.add_argument("--memory-growth", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    devices = start_devices(memory_growth=args.memory_growth)
    gpus = tf.config.list_logical_devices("GPU")
    precision = args.precision or ("mixed_float16" if gpus else "mixed_bfloat16")
    config = load_run_config(args.config)
    size = args.image_size or config.data.image_size
    batch = args.batch_size or config.data.batch_size
    teacher_name = args.teacher or config.teacher.name
    keras.utils.set_random_seed(config.seed)
    manifest = config.data.__class__(dataset="demo", image_size=size, batch_size=batch).read_manifest()
    train = manifest.split("train")
    spec = get_spec(config.student.name).preprocessing.with_size(size)
    print(f"devices: {', '.join(devices)}")
    print(f"precision {precision}, jit_compile {args.jit_compile}; teacher {teacher_name}, "
          f"student {config.student.name}; {size} px, batch {batch}, {args.steps} steps each; "
          f"demo data: {len(train)} training films")
    augment = config.data.augment_config()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        png = build_dataset(train, spec, training=True, batch_size=batch, augment=augment)
        results["pipeline, decoding PNGs"] = pipeline_rate(png, args.steps)
        prepared = PreparedFilms.load(prepare_films(train, Path(folder), size=size)).manifest()
        ds = build_dataset(prepared, spec, training=True, batch_size=batch, augment=augment)
        results["pipeline, prepared shards"] = pipeline_rate(ds, args.steps)
        with precision_policy(precision):
            teacher = create(teacher_name, num_classes=manifest.num_classes,
                             input_shape=spec.input_shape)
            trainer = Distiller(teacher)
            trainer.compile(make_optimizer(config.teacher.train, args.steps),
                            student_loss_fn=config.distill.hard_loss, alpha=1.0,
                            jit_compile=args.jit_compile)
            results[f"training teacher {teacher_name}"] = fit_rate(trainer, ds, args.steps)
            student = create(config.student.name, num_classes=manifest.num_classes,
                             input_shape=spec.input_shape)
            distiller = Distiller(student, teacher)
            distiller.compile(make_optimizer(config.student.train, args.steps),
                              jit_compile=args.jit_compile,
                              **distill_compile_kwargs(config, student_only=False))
            results[f"distilling {config.student.name}"] = fit_rate(distiller, ds, args.steps)
            loss = distiller.evaluate(ds.take(1), verbose=0, return_dict=True)["loss"]
    for what, rate in results.items():
        print(f"{what:<40} {rate:9.1f} films/s")
    if not np.isfinite(loss):
        raise SystemExit(f"the distillation loss is {loss}: not finite under {precision}")
    print(f"distillation loss after the check: {loss:.4f} (finite)")
    if args.json:
        args.json.write_text(json.dumps({
            "devices": devices, "precision": precision, "jit_compile": args.jit_compile,
            "image_size": size, "batch_size": batch, "steps": args.steps, "teacher": teacher_name,
            "student": config.student.name, "films_per_s": results, "loss": loss}, indent=2) + "\n")


if __name__ == "__main__":
    main()
