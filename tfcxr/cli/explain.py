"""``tfcxr explain``: Grad-CAM pictures of a student (and its teacher), thin over tfcxr.explain."""

from __future__ import annotations

from pathlib import Path

import click

from tfcxr.cli import main


@main.command("explain")
@click.option("--model", "-m", "model_path", required=True, type=click.Path(exists=True),
              help="The model to explain: a run directory, RUN/best.keras or RUN/qat/best.h5.")
@click.option("--teacher", "-t", type=click.Path(exists=True), default=None,
              help="A teacher to show beside it (a run directory or model file).")
@click.option("--image", "-i", "images", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="A film (PNG, JPEG or DICOM); repeatable.")
@click.option("--split", default=None,
              help="Instead of --image: films of this split of the model's run (e.g. test).")
@click.option("--limit", type=click.IntRange(1), default=8, show_default=True,
              help="With --split: how many films.")
@click.option("--label", "-l", default="all", show_default=True,
              help="A label name (repeat with commas: Effusion,Mass) or 'all'.")
@click.option("--guided", is_flag=True, help="tf-explain's guided-gradient Grad-CAM.")
@click.option("--out", "-O", type=click.Path(file_okay=False), default="explanations",
              show_default=True, help="Folder for the PNGs and explanations.json.")
def explain_command(model_path, teacher, images, split, limit, label, guided, out):
    """Grad-CAM overlays (colour map over the grey film) for each requested label, the teacher
    and the student side by side, each captioned with its predicted probability."""
    from tqdm import tqdm

    from tfcxr.explain.films import explain_films
    from tfcxr.runs.predictor import open_predictor

    if bool(images) == bool(split):
        raise click.UsageError("give --image FILM (repeatable) or --split SPLIT")
    films = [Path(p) for p in images]
    if split:
        run = open_predictor(model_path).run
        if run is None:
            raise click.UsageError(f"{model_path} is not inside a tfcxr run: give --image films")
        films = [Path(p) for p in run.split(split).paths[:limit]]
    wanted = label if label == "all" else [x.strip() for x in label.split(",")]
    index = explain_films(model_path, films, out, label=wanted, teacher=teacher, guided=guided,
                          progress=lambda x: tqdm(x, desc="explaining", unit="film", disable=None))
    figures = sum(len(entry["figures"]) for entry in index)
    click.echo(f"wrote {figures} figure(s) for {len(index)} film(s) to {out}")
