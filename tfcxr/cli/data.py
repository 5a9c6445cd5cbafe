"""``tfcxr data ...``: make the demo dataset, check a dataset, write its manifest."""

from __future__ import annotations

import json
import sys
from collections import Counter

import click
import yaml

from tfcxr.cli import main
from tfcxr.data.readers import dataset_names


def parse_options(pairs) -> dict:
    """``-o key=value`` pairs; values are YAML (``-o views=[PA]``, ``-o val_fraction=0.2``)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="-o/--option")
        options[key.strip()] = yaml.safe_load(value)
    return options


dataset_option = click.option(
    "--dataset", "-d", default="demo", show_default=True,
    type=click.Choice(dataset_names()),
    help="Dataset reader: csv is your own CSV (image-path column + label columns).")
root_option = click.option(
    "--root", "-r", default=None, type=click.Path(file_okay=False),
    help="Dataset folder as downloaded (demo: defaults to the user cache).")
reader_options = click.option(
    "--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
    help="Reader option, repeatable: e.g. -o policy=u-mixed (CheXpert), -o val_fraction=0.2, "
         "-o views=[PA], -o image_column=file (csv).")


@main.group()
def data():
    """Datasets: the embedded demo, checks, manifests."""


@data.command("demo")
@click.option("--out", "-O", required=True, type=click.Path(file_okay=False), help="Folder to write.")
@click.option("--patients", default=300, show_default=True, help="Number of synthetic patients.")
@click.option("--image-size", default=256, show_default=True, help="Film size in pixels.")
@click.option("--seed", default=0, show_default=True)
def demo_command(out, patients, image_size, seed):
    """Write the synthetic CXR demo dataset (NIH ChestX-ray14 format) to OUT."""
    from tfcxr.data.demo import DemoSpec, write_demo_dataset

    spec = DemoSpec(patients=patients, image_size=image_size, seed=seed)
    path = write_demo_dataset(out, spec, progress=True)
    info = json.loads((path / "demo.json").read_text())
    click.echo(f"wrote {info['images']} films of {patients} patients to {path} "
               f"(labels: {', '.join(info['labels'])})")
    click.echo(f"check it: tfcxr data check --dataset nih --root {path}")


@data.command("check")
@dataset_option
@root_option
@reader_options
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.option("--no-images", is_flag=True, help="Skip decoding every image (faster, less thorough).")
@click.option("--workers", default=4, show_default=True, help="Threads decoding images.")
def check_command(dataset, root, options, as_json, no_images, workers):
    """Report every problem of a dataset in one pass.

    Missing files, unreadable or truncated images, unknown labels, bad CSV columns, invalid label
    values, patients leaking across splits, image paths escaping the root. Exit status is 0 only
    when the dataset is usable.
    """
    from tfcxr.data.check import check_dataset

    report = check_dataset(dataset, root, decode_images=not no_images, workers=workers,
                           progress=not as_json, **parse_options(options))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        _print_report(report)
    sys.exit(0 if report.usable else 1)


def _print_report(report) -> None:
    m = report.manifest
    click.echo(f"dataset {report.dataset} at {report.root}")
    if m is not None:
        splits = ", ".join(f"{s or 'unassigned'} {n}" for s, n in sorted(Counter(m.splits).items()))
        click.echo(f"  {len(m)} images, {len(set(m.patient_ids))} patients; splits: {splits}")
        for note in m.notes:
            click.echo(f"  - {note}")
        counts = m.label_counts()
        if len(counts):
            table = counts.pivot(index="label", columns="split", values="positive").reindex(m.label_names)
            click.echo("  positives per label and split:")
            click.echo("    " + table.to_string().replace("\n", "\n    "))
    if report.problems:
        click.echo(f"problems ({len(report.problems)}):")
        for p in report.problems:
            click.secho(f"  {p.severity.upper():7s} [{p.kind}] {p} (x{p.count})",
                        fg="red" if p.severity == "error" else "yellow")
    else:
        click.echo("problems: none")
    if report.manifest is not None:
        click.echo(f"images decoded: {report.images_decoded}")
    click.secho("usable" if report.usable else "NOT usable", fg="green" if report.usable else "red",
                bold=True)


@data.command("manifest")
@dataset_option
@root_option
@reader_options
@click.option("--out", "-O", required=True, type=click.Path(dir_okay=False), help="CSV to write.")
@click.option("--skip-bad", is_flag=True, help="Drop rows with problems instead of failing.")
def manifest_command(dataset, root, options, out, skip_bad):
    """Read a dataset and write its manifest (path, patient, view, split, labels) as CSV."""
    from tfcxr.data.readers import read_dataset

    manifest = read_dataset(dataset, root, skip_bad=skip_bad, **parse_options(options))
    manifest.save_csv(out)
    splits = ", ".join(f"{s} {n}" for s, n in sorted(Counter(manifest.splits).items()))
    click.echo(f"wrote {len(manifest)} rows ({splits}) to {out}")


@data.command("preview")
@dataset_option
@root_option
@reader_options
@click.option("--config", "-c", default=None, metavar="FILE|NAME",
              help="Run config (a YAML file or a shipped config's name) whose data section sets "
                   "image size and augmentation.")
@click.option("--split", default="train", show_default=True, type=click.Choice(["train", "val", "test"]))
@click.option("--count", default=16, show_default=True, help="Images in the grid.")
@click.option("--no-augment", is_flag=True, help="Show the evaluation view (no augmentation).")
@click.option("--out", "-O", default="preview.png", show_default=True, type=click.Path(dir_okay=False))
def preview_command(dataset, root, options, config, split, count, no_augment, out):
    """Save a grid of pipeline images with their labels: what the model will see."""
    from tfcxr.config import load_data_config
    from tfcxr.data.preview import preview_batch
    from tfcxr.preprocessing import PreprocessingSpec

    overrides = {"dataset": dataset, "root": root} if not config else {}
    data_config = load_data_config(config, **overrides)
    data_config.options.update(parse_options(options))
    manifest = data_config.read_manifest().split(split)
    spec = PreprocessingSpec(image_size=data_config.image_size)
    augment = None if no_augment or split != "train" else data_config.augment_config()
    path = preview_batch(manifest, spec, out, count=count, augment=augment)
    click.echo(f"wrote {path}")


@data.command("prepare")
@dataset_option
@root_option
@reader_options
@click.option("--out", "-O", required=True, type=click.Path(file_okay=False),
              help="Folder for the shards, manifest.csv and prepared.json.")
@click.option("--size", default=256, show_default=True, type=click.IntRange(8),
              help="Film size in pixels (at least the model's image_size; equal is fastest).")
@click.option("--depth", default="auto", show_default=True, type=click.Choice(["auto", "8", "16"]),
              help="Bits per pixel stored; auto: 16 if any file holds more than 8 bits.")
@click.option("--shard-films", default=1024, show_default=True, type=click.IntRange(1),
              help="Films per shard file.")
@click.option("--skip-bad", is_flag=True, help="Drop films that cannot be read instead of failing.")
def prepare_command(dataset, root, options, out, size, depth, shard_films, skip_bad):
    """Decode and resize every film once into sharded TFRecords, for fast training.

    Rerun the same command to finish an interrupted preparation. Train on the result with
    `tfcxr distill --prepared OUT` (or `data: {prepared: OUT}` in the run config, with the same
    dataset and reader options); evaluation of such a run reads the prepared films too.
    """
    from tqdm import tqdm

    from tfcxr.data.prepare import prepare_films
    from tfcxr.data.readers import read_dataset

    reader_kwargs = parse_options(options)
    manifest = read_dataset(dataset, root, skip_bad=skip_bad, **reader_kwargs)
    if skip_bad:
        from tfcxr.data.images import find_bad_images

        bad = find_bad_images(manifest.paths)
        manifest = manifest.select([p not in bad for p in manifest.paths])
    path = prepare_films(manifest, out, size=size, depth=depth if depth == "auto" else int(depth),
                         options=reader_kwargs, shard_films=shard_films,
                         progress=lambda it: tqdm(it, total=len(manifest), desc="preparing films",
                                                  unit="film", disable=None))
    click.echo(f"prepared {len(manifest)} films at {size} px in {path}")
