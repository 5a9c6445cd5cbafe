"""``tfcxr evaluate`` and ``tfcxr compare``: thin over tfcxr.evaluation."""

from __future__ import annotations

from pathlib import Path

import click

from tfcxr.cli import main
from tfcxr.cli.data import reader_options


def progress_bar(what: str):
    """A tqdm bar over pixel batches (hidden when not on a terminal)."""
    from tqdm import tqdm

    return lambda batches: tqdm(batches, desc=what, unit="batch", disable=None, leave=False)


def bootstrap_options(fn):
    """``--bootstrap`` (patient-level resamples; paired for compare) and ``--seed``."""
    fn = click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")(fn)
    return click.option("--bootstrap", "n_boot", type=click.IntRange(10), default=1000,
                        show_default=True, help="Patient-level bootstrap resamples for the 95% "
                        "intervals (paired: the same resamples for every model).")(fn)


@main.command("evaluate")
@click.option("--model", "-m", "model_path", required=True, type=click.Path(exists=True),
              help="A run directory, a Keras model (RUN/best.keras, RUN/qat/best.h5) or an "
                   "exported .tflite.")
@click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="The run the model belongs to (default: found from the model's location).")
@click.option("--split", default="test", show_default=True, help="Split to evaluate, or 'all'.")
@click.option("--dataset", "-d", default=None,
              help="Evaluate on another dataset (e.g. external validation) instead of the run's "
                   "films: a reader name (nih, chexpert, padchest, csv); its labels must be the model's.")
@click.option("--root", "-r", type=click.Path(file_okay=False, exists=True), default=None,
              help="With --dataset: its folder.")
@reader_options
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Report folder (default: reports/<model>-<split> beside the model).")
@bootstrap_options
def evaluate_command(model_path, run_dir, split, dataset, root, options, report_dir, n_boot, seed):
    """Per-label ROC-AUC with patient-level bootstrap 95% CIs, sensitivity / specificity / F1 at
    the operating thresholds (exported thresholds.json, else Youden's J on validation), ROC and
    calibration plots, as report.json, report.md and a standalone report.html."""
    from tfcxr.cli.data import parse_options
    from tfcxr.evaluation import write_report
    from tfcxr.evaluation.models import evaluate_model
    from tfcxr.runs.predictor import open_predictor

    model = open_predictor(model_path, run_dir)
    report = evaluate_model(model, split=split, dataset=dataset, root=root,
                            options=parse_options(options), n_boot=n_boot, seed=seed,
                            progress=progress_bar("scoring"))
    out = Path(report_dir) if report_dir else model.path.parent / "reports" / f"{model.path.stem}-{split}"
    paths = write_report(report, out)
    mean = report.mean_auc
    click.echo(f"{model.name}: mean AUC {mean.estimate:.4f} (95% CI {mean.low:.4f}-{mean.high:.4f}) "
               f"on {report.n_images} films; report in {paths['html']}")


@main.command("compare")
@click.argument("models", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--split", default="test", show_default=True, help="Split to compare on, or 'all'.")
@click.option("--out", "-O", type=click.Path(file_okay=False), default=None,
              help="Folder for comparison.json and comparison.md (default: print only).")
@bootstrap_options
def compare_command(models, split, out, n_boot, seed):
    """One table of several runs or model files (teacher, student only, distilled, QAT int8 ...)
    on the same films: mean AUC with CIs, deltas to the first and paired bootstrap p-values.
    Every model must share the first one's labels; films come from the first model's run."""
    from tfcxr.evaluation import write_comparison
    from tfcxr.evaluation.models import compare_models

    table = compare_models(models, split=split, n_boot=n_boot, seed=seed)
    click.echo(table.to_markdown())
    if out:
        paths = write_comparison(table, out)
        click.echo(f"wrote {paths['json']} and {paths['markdown']}")
