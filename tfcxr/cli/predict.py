"""``tfcxr predict``: scores for films on disk, thin over tfcxr.prediction."""

from __future__ import annotations

from pathlib import Path

import click

from tfcxr.cli import main

EXIT_SKIPPED = 3


@main.command("predict")
@click.argument("films", nargs=-1, required=True)
@click.option("--model", "-m", "model_path", required=True, type=click.Path(exists=True),
              help="A run directory, a Keras model (RUN/best.keras, RUN/qat/best.h5) or an "
                   "exported .tflite (with the model_card.json / labels.txt / thresholds.json of "
                   "its export beside it).")
@click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="The run the model belongs to (default: found from the model's location).")
@click.option("--recursive", "-R", is_flag=True, help="Look into the subfolders of a folder.")
@click.option("--out", "-O", type=click.Path(dir_okay=False), default="predictions.csv",
              show_default=True, help="The CSV: one row per film.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write everything (model, contract, thresholds, rows, skipped films) "
                   "as JSON to this file.")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--threshold-split", default="val", show_default=True,
              help="Without an exported thresholds.json: the split of the model's run whose "
                   "Youden's J sets the operating thresholds.")
@click.option("--dicom-window", type=click.Choice(["auto", "off"]), default=None,
              help="DICOM files: apply the file's VOI LUT or window ('auto') or scale the "
                   "stored bits only ('off'). Default: the model's preprocessing.json, which is "
                   "'auto' unless the run chose otherwise.")
@click.option("--gradcam", "gradcam_labels", default=None,
              help="Also draw Grad-CAM overlays for these labels (comma-separated, or 'all'), "
                   "one PNG per film and label (Keras models only).")
@click.option("--gradcam-dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the overlays (default: gradcam/ beside --out).")
@click.pass_context
def predict_command(ctx, films, model_path, run_dir, recursive, out, json_path, batch_size,
                    threshold_split, dicom_window, gradcam_labels, gradcam_dir):
    """Probabilities of every label for FILMS (files, folders, glob patterns; PNG 8/16-bit,
    JPEG, DICOM), and the positives at the model's operating thresholds (thresholds.json of an
    export, else Youden's J on its run's validation split), as a CSV.

    Unreadable films are skipped and listed at the end. Exit status: 0 every film scored,
    3 some films were skipped (the others are in the CSV), 1 an error (nothing written),
    2 a usage error. Outputs are written atomically: complete or absent."""
    from tqdm import tqdm

    from tfcxr.prediction import predict
    from tfcxr.prediction.predict import summary

    bars = []

    def progress(total):
        bars.append(tqdm(total=total, desc="predicting", unit="film", disable=None))
        return lambda batches: (bars[0].update(len(batch)) or batch for batch in batches)

    labels = None
    if gradcam_labels:
        labels = "all" if gradcam_labels == "all" else [x.strip() for x in gradcam_labels.split(",")]
        gradcam_dir = gradcam_dir or str(Path(out).parent / "gradcam")
    try:
        result = predict(model_path, films, run=run_dir, recursive=recursive,
                         batch_size=batch_size, threshold_split=threshold_split,
                         dicom_window=dicom_window, gradcam=labels, gradcam_dir=gradcam_dir,
                         progress=progress)
    finally:
        for bar in bars:
            bar.close()
    result.write_csv(out)
    if json_path:
        result.write_json(json_path)
    written = f"{out}" + (f" and {json_path}" if json_path else "")
    figures = sum(len(entry["figures"]) for entry in result.gradcam)
    click.echo(f"{result.model['model']}: {len(result.table)} film(s) scored, written to {written}"
               + (f"; {figures} Grad-CAM overlay(s) in {gradcam_dir}" if figures else ""))
    if result.thresholds is None:
        click.echo(f"no operating thresholds: {result.threshold_source}; 'positives' is empty")
    if result.skipped:
        click.echo(f"skipped {len(result.skipped)} unreadable film(s):\n{summary(result)}", err=True)
        ctx.exit(EXIT_SKIPPED)
