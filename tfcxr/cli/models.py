"""``tfcxr models``: the model zoo as a table (size, cost, input, Grad-CAM layer)."""

from __future__ import annotations

import json

import click

from tfcxr.cli import main

NUM_CLASSES = 14  # the ChestX-ray14 head, the paper's reference point


def describe(name: str) -> dict:
    """Build ``name`` once at its default input size and measure it."""
    from tfcxr.backend import keras
    from tfcxr.models import create, get_spec
    from tfcxr.models.macs import count_macs

    spec = get_spec(name)
    model = create(name, num_classes=NUM_CLASSES)
    row = {
        "name": name,
        "role": spec.role,
        "params": int(sum(keras.backend.count_params(w) for w in model.trainable_weights)),
        "macs": count_macs(model),
        "input_size": spec.preprocessing.image_size,
        "gradcam_layer": spec.gradcam_layer,
        "quantizable": spec.quantizable,
        "description": spec.description,
    }
    keras.backend.clear_session()  # free the graph before the next (maybe large) model
    return row


@main.command("models")
@click.option("--role", type=click.Choice(["teacher", "student"]), default=None,
              help="Only teachers or only students.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def models_command(role, as_json):
    """List registered models: trainable params with a 14-class head, MACs at the default input
    size, input size and Grad-CAM layer. Builds each model once (about a minute for the zoo)."""
    from tqdm import tqdm

    from tfcxr.models import list_models

    names = list_models(role)
    rows = [describe(name) for name in tqdm(names, desc="building models", unit="model",
                                            disable=None, leave=False)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = ("name", "role", f"params ({NUM_CLASSES} cls)", "GMACs", "input", "Grad-CAM layer", "QAT")
    lines = [header] + [
        (r["name"], r["role"], f"{r['params']:,}", f"{r['macs'] / 1e9:.3f}",
         f"{r['input_size']}x{r['input_size']}", r["gradcam_layer"], "yes" if r["quantizable"] else "no")
        for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
