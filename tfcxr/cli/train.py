"""``tfcxr train-teacher``, ``tfcxr distill``, ``tfcxr teacher-predict``: thin over tfcxr.runs.training."""

from __future__ import annotations

from pathlib import Path

import click

from tfcxr.cli import main
from tfcxr.cli.data import parse_options
from tfcxr.data.readers import dataset_names


def data_options(fn):
    """Options that pick the data and override the config's training sizes."""
    options = [
        click.option("--config", "-c", type=click.Path(dir_okay=False, exists=True), default=None,
                     help="Run config (YAML). Default: configs/demo.yaml, the embedded demo data."),
        click.option("--dataset", "-d", type=click.Choice(dataset_names()), default=None,
                     help="Dataset reader (overrides the config)."),
        click.option("--root", "-r", type=click.Path(file_okay=False), default=None,
                     help="Dataset folder (overrides the config)."),
        click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
                     help="Reader option, repeatable (see `tfcxr data check --help`)."),
        click.option("--epochs", type=click.IntRange(1), default=None, help="Override train.epochs."),
        click.option("--image-size", type=click.IntRange(16), default=None, help="Override data.image_size."),
        click.option("--batch-size", type=click.IntRange(1), default=None, help="Override data.batch_size."),
        click.option("--seed", type=int, default=None, help="Override the config's seed."),
        click.option("--quiet", "-q", is_flag=True, help="No per-step progress bar (one line per epoch)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def resolve_config(config, dataset, root, options, image_size, batch_size, seed):
    from tfcxr.config import load_run_config

    run_config = load_run_config(config)
    data = run_config.data
    if dataset is not None and dataset != data.dataset:
        data.dataset, data.root, data.options = dataset, root, {}
    elif root is not None:
        data.root = root
    data.options.update(parse_options(options))
    data.image_size = image_size or data.image_size
    data.batch_size = batch_size or data.batch_size
    data.__post_init__()
    if seed is not None:
        run_config.seed = seed
    return run_config


def default_out(kind: str, *names: str) -> Path:
    """``runs/<kind>-<names>``: the same command resumes an unfinished run; a finished one gets
    a numbered sibling rather than being overwritten."""
    from tfcxr.runs.layout import run_is_complete

    base = Path("runs") / "-".join((kind, *names))
    candidate, n = base, 1
    while run_is_complete(candidate):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def report(result, what: str) -> None:
    click.echo(f"{what}: best val AUC {result.best_val_auc:.4f} over {result.epochs} epoch(s); "
               f"models in {result.run_dir} ({result.best_model.name}, {result.last_model.name})")


@main.command("train-teacher")
@click.option("--teacher", "-t", default=None, help="Registered teacher (default: the config's, densenet161).")
@click.option("--teacher-weights", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Start from these weights (e.g. tfcxr port-weights output).")
@data_options
@click.option("--out", "-O", type=click.Path(file_okay=False), default=None,
              help="Run directory (default runs/teacher-<name>-<dataset>; rerun to resume).")
def train_teacher_command(teacher, teacher_weights, config, dataset, root, options, epochs,
                          image_size, batch_size, seed, quiet, out):
    """Train a teacher with masked binary cross-entropy."""
    from tfcxr.runs.training import train_teacher

    run_config = resolve_config(config, dataset, root, options, image_size, batch_size, seed)
    run_config.teacher.name = teacher or run_config.teacher.name
    run_config.teacher.weights = teacher_weights or run_config.teacher.weights
    run_config.teacher.train.epochs = epochs or run_config.teacher.train.epochs
    out = Path(out) if out else default_out("teacher", run_config.teacher.name, run_config.data.dataset)
    report(train_teacher(run_config, out, verbose=2 if quiet else 1), f"teacher {run_config.teacher.name}")


@main.command("distill")
@click.option("--teacher", "-t", default=None, help="Registered teacher (default: the config's, densenet161).")
@click.option("--teacher-weights", type=click.Path(exists=True), default=None,
              help="A trained teacher (.keras from train-teacher, or a weights file for --teacher). "
                   "Without it (and without --teacher-predictions) the teacher is trained first.")
@click.option("--teacher-predictions", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Offline distillation: per-image teacher logits or probabilities "
                   "(tfcxr teacher-predict output, or any CSV with image ids and prob_<Label>).")
@click.option("--student", "-s", default=None, help="Registered student (default: the config's, eeea_net_c2).")
@click.option("--student-only", is_flag=True, help="No teacher: the baseline the paper compares against.")
@click.option("--qat", is_flag=True, help="Then fine-tune the student with quantization-aware "
                                          "training against the same teacher (as tfcxr qat).")
@data_options
@click.option("--out", "-O", type=click.Path(file_okay=False), default=None,
              help="Run directory (default runs/distill-<teacher>-<student>-<dataset>; rerun to resume).")
def distill_command(teacher, teacher_weights, teacher_predictions, student, student_only, qat, config,
                    dataset, root, options, epochs, image_size, batch_size, seed, quiet, out):
    """Distil a compact student from a frozen teacher (online, offline, or no teacher)."""
    from tfcxr.runs.training import distill_with_teacher_first

    if sum(map(bool, (teacher_weights, teacher_predictions, student_only))) > 1:
        raise click.UsageError("use only one of --teacher-weights, --teacher-predictions, --student-only")
    run_config = resolve_config(config, dataset, root, options, image_size, batch_size, seed)
    run_config.teacher.name = teacher or run_config.teacher.name
    run_config.student.name = student or run_config.student.name
    run_config.student.train.epochs = epochs or run_config.student.train.epochs
    teacher_label = ("none" if student_only else "offline" if teacher_predictions
                     else run_config.teacher.name)
    out = Path(out) if out else default_out("distill", teacher_label, run_config.student.name,
                                            run_config.data.dataset)
    verbose = 2 if quiet else 1
    trains_teacher = not (teacher_weights or teacher_predictions or student_only)
    if trains_teacher and epochs:
        run_config.teacher.train.epochs = epochs
    results = distill_with_teacher_first(run_config, out, teacher_model=teacher_weights,
                                         teacher_predictions=teacher_predictions,
                                         student_only=student_only, verbose=verbose,
                                         notify=click.echo)
    if "teacher" in results:
        report(results["teacher"], "teacher")
    report(results["student"], f"student {run_config.student.name}")
    if qat:
        from tfcxr.runs.qat import qat_finetune

        report(qat_finetune(out, verbose=verbose), f"QAT student {run_config.student.name}")


@main.command("teacher-predict")
@click.option("--teacher-weights", "model_path", required=True, type=click.Path(exists=True),
              help="A trained teacher (.keras, e.g. RUN/best.keras, or a weights file for the "
                   "config's teacher); it sees its own preprocessing.")
@data_options
@click.option("--out", "-O", required=True, type=click.Path(dir_okay=False),
              help="CSV of per-image logits (image_id, logit_<Label>...).")
def teacher_predict_command(model_path, config, dataset, root, options, epochs, image_size,
                            batch_size, seed, quiet, out):
    """Write a teacher's per-image logits once, for offline distillation (--teacher-predictions)."""
    from tfcxr.distill.teacher_predictions import predict_logits, write_teacher_logits
    from tfcxr.runs.training import load_teacher

    run_config = resolve_config(config, dataset, root, options, image_size, batch_size, seed)
    manifest = run_config.data.read_manifest()
    model, spec = load_teacher(model_path, run_config, manifest.num_classes,
                               run_config.data.image_size)
    logits = predict_logits(model, manifest, spec, run_config.data.batch_size)
    write_teacher_logits(out, manifest.image_ids, manifest.label_names, logits)
    click.echo(f"wrote logits of {len(manifest)} images x {manifest.num_classes} labels to {out}")
