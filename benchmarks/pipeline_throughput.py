"""Is the input pipeline fast enough to keep a student's training step busy?

Measures images/s of ``build_dataset`` (decode + resize + augment + batch, training mode) on the
NIH sample, with and without an in-memory cache, and of one training step of the student model at
the same image size and batch. The pipeline is not the bottleneck while its rate is above the
training step's.

    .venv/bin/python benchmarks/pipeline_throughput.py [NIH_SAMPLE_DIR] [--json out.json]

The sample's PNGs are 256 x 256; full-size NIH films are 1024 x 1024, 16 times the pixels to
decode. The ``1024px source`` row decodes upscaled copies of sample images written to a temporary
folder, as a stand-in for that cost (smoother than real films, so if anything optimistic).
The ``prepared`` rows read the sample from shards written by ``tfcxr data prepare`` (8-bit, at
the training size and at 256 px, resized on the fly): no PNG decoding at all, so their rate does
not depend on the size of the source films.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tfcxr import models
from tfcxr.backend import keras, tf
from tfcxr.data.augment import AugmentConfig
from tfcxr.data.pipeline import build_dataset
from tfcxr.data.prepare import prepare_films
from tfcxr.data.prepared import PreparedFilms
from tfcxr.data.readers.nih import read_nih
from tfcxr.preprocessing import PreprocessingSpec

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "nih-sample"


def pipeline_rate(manifest, spec, batch_size, cache, epochs, augment=True) -> tuple[float, float]:
    """(first-epoch images/s, later-epoch images/s): the first pass fills a cache and warms up."""
    ds = build_dataset(manifest, spec, training=True, batch_size=batch_size,
                       augment=AugmentConfig() if augment else None, cache=cache)
    rates = []
    for _ in range(epochs):
        start, count = time.perf_counter(), 0
        for images, _, _ in ds:
            count += int(images.shape[0])
        rates.append(count / (time.perf_counter() - start))
    return rates[0], float(np.median(rates[1:]))


def training_rate(size, batch_size, num_classes, batch, steps) -> tuple[str, float]:
    """images/s of ``fit`` on one real batch repeated: the step alone, no input cost."""
    name = "eeea_net_c2"
    model = models.create(name, num_classes=num_classes, input_shape=(size, size, 3))
    model.compile(keras.optimizers.Adam(1e-3),
                  lambda y, logits: keras.backend.binary_crossentropy(y, logits, from_logits=True))
    repeated = tf.data.Dataset.from_tensors(batch).repeat()
    model.fit(repeated, steps_per_epoch=2, epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(repeated, steps_per_epoch=steps, epochs=1, verbose=0)
    return name, steps * batch_size / (time.perf_counter() - start)


def full_size_copies(manifest, count: int, folder: Path):
    """``count`` sample images upscaled to 1024 x 1024 PNGs, as a manifest of those files."""
    rows = np.arange(count) % len(manifest)
    paths = []
    for i, row in enumerate(rows):
        path = folder / f"full_{i:03d}.png"
        Image.open(manifest.paths[row]).convert("L").resize((1024, 1024), Image.BICUBIC).save(path)
        paths.append(str(path))
    copy = manifest.select(rows)
    copy.paths = np.asarray(paths, dtype=object)
    return copy


def measure(manifest, args) -> tuple[str, list[dict]]:
    results, model = [], ""
    for size in args.sizes:
        spec = PreprocessingSpec(image_size=size)
        for cache in (False, True):
            first, steady = pipeline_rate(manifest, spec, args.batch_size, cache, args.epochs)
            results.append({"size": size, "what": f"pipeline, {'memory ' if cache else 'no '}cache",
                            "first_epoch": first, "images_per_s": steady})
        batch = next(iter(build_dataset(manifest, spec, training=True, batch_size=args.batch_size)))
        model, rate = training_rate(size, args.batch_size, manifest.num_classes, batch,
                                    args.train_steps)
        results.append({"size": size, "what": "training step", "images_per_s": rate})
    with tempfile.TemporaryDirectory() as folder:
        size = args.sizes[0]
        spec = PreprocessingSpec(image_size=size)
        for stored in sorted({size, 256}):
            prepared = PreparedFilms.load(prepare_films(manifest, Path(folder) / str(stored),
                                                        size=stored, shard_films=128)).manifest()
            for augment in (True, False):
                first, steady = pipeline_rate(prepared, spec, args.batch_size, False, args.epochs,
                                              augment)
                results.append({"size": size, "what": f"prepared {stored}px shards"
                                + ("" if augment else ", no augment"),
                                "first_epoch": first, "images_per_s": steady})
    if args.full_size:
        with tempfile.TemporaryDirectory() as folder:
            copies = full_size_copies(manifest, args.full_size, Path(folder))
            spec = PreprocessingSpec(image_size=args.sizes[0])
            first, steady = pipeline_rate(copies, spec, args.batch_size, False, args.epochs)
        results.append({"size": args.sizes[0], "what": "pipeline, no cache, 1024px source",
                        "first_epoch": first, "images_per_s": steady})
    return model, results


def report(model: str, results: list[dict]) -> None:
    step = {r["size"]: r["images_per_s"] for r in results if r["what"] == "training step"}
    print(f"student: {model}\n")
    print(f"{'px':>4}  {'what':<36} {'images/s':>9} {'1st epoch':>10} {'x step':>7}")
    for r in results:
        pipeline = "first_epoch" in r
        first = f"{r['first_epoch']:10.0f}" if pipeline else " " * 10
        ratio = f"{r['images_per_s'] / step[r['size']]:7.1f}" if pipeline else ""
        print(f"{r['size']:>4}  {r['what']:<36} {r['images_per_s']:9.0f} {first} {ratio}")
    print("\nimages/s: median of the epochs after the first (pipeline), timed steps after warm-up "
          "(training).\n1st epoch: includes tracing and, with a cache, filling it. x step: pipeline "
          "images/s over the training step's\nat that size; above 1 the pipeline keeps up.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?", default=str(DEFAULT_ROOT), help="NIH sample folder")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 128])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help="pipeline passes per setting")
    parser.add_argument("--train-steps", type=int, default=6, help="timed training steps")
    parser.add_argument("--full-size", type=int, default=96,
                        help="1024px copies for the full-size row (0: skip)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    manifest = read_nih(args.root, val_fraction=0.0)
    print(f"{len(manifest)} NIH sample images from {args.root}; batch {args.batch_size}; "
          f"{os.cpu_count()} CPU cores visible; TensorFlow {tf.__version__}\n")
    model, results = measure(manifest, args)
    report(model, results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "root": str(args.root), "images": len(manifest), "batch_size": args.batch_size,
            "student": model, "cpu_count": os.cpu_count(),
            "machine": platform.processor() or platform.machine(), "tensorflow": tf.__version__,
            "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
