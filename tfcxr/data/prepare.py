"""Write prepared films (``tfcxr.data.prepared``): decode and resize every film once.

Streaming, one shard at a time: memory holds a shard's worth of in-flight films at most, never a
split. Each shard is written to a temporary file and renamed when complete, and ``prepared.json``
records the settings first (status ``preparing``) and the shards last (status ``complete``). A
rerun of the same command therefore skips the shards already written and finishes the rest; a
rerun with other settings (size, depth, rows) is refused rather than mixing two preparations.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tfcxr.backend import tf
from tfcxr.data.images import DICOM_MAGIC, DICOM_MAGIC_OFFSET, JPEG_SOI, PNG_SIGNATURE, decode_image
from tfcxr.data.manifest import Manifest
from tfcxr.data.pipeline import resize_image
from tfcxr.data.prepared import FORMAT, INFO_FILE, MANIFEST_FILE, Shard, encode_record, quantise
from tfcxr.errors import DatasetError
from tfcxr.io import atomic_path, write_text_atomic
from tfcxr.preprocessing import PreprocessingSpec

log = logging.getLogger("tfcxr.data")

DEFAULT_SHARD_FILMS = 1024


def file_bit_depth(path: str) -> int:
    """8 or 16: the depth needed to keep a film's grey levels, from its header alone."""
    with open(path, "rb") as f:
        head = f.read(DICOM_MAGIC_OFFSET + len(DICOM_MAGIC))
    if head.startswith(PNG_SIGNATURE) and len(head) > 24:
        return 16 if head[24] > 8 else 8  # the IHDR bit depth (per channel)
    if head.startswith(JPEG_SOI):
        return 8
    return 16  # DICOM (BitsStored up to 16) and anything decoded in Python


def prepare_films(manifest: Manifest, out: str | Path, *, size: int, depth: int | str = "auto",
                  options: dict | None = None, shard_films: int = DEFAULT_SHARD_FILMS,
                  progress: Callable | None = None) -> Path:
    """Write ``manifest``'s films to ``out`` at ``size`` x ``size`` px and ``depth`` bits.

    depth: 8, 16 or ``"auto"`` (16 if any film's file holds more than 8 bits, else 8).
    options: the reader options that produced ``manifest``, recorded so a config can check them.
    progress: wraps the iterator over films (e.g. a tqdm bar, ``total=len(manifest)``).
    """
    out = Path(out)
    if not len(manifest):
        raise DatasetError(manifest.root, "no films to prepare")
    if size < 8 or shard_films < 1:
        raise ValueError("size must be >= 8 and shard_films >= 1")
    if depth == "auto":
        depth = max(file_bit_depth(p) for p in manifest.paths)
    if depth not in (8, 16):
        raise ValueError(f"depth must be 8, 16 or 'auto', got {depth!r}")
    # Shards never mix splits: group the rows by split, keeping their order within a split.
    order = np.argsort(manifest.splits, kind="stable")
    manifest = manifest.select(order)
    spec = PreprocessingSpec(image_size=size)
    settings = {"format": FORMAT, "dataset": manifest.dataset, "source_root": str(manifest.root),
                "options": options or {}, "size": size, "depth": depth,
                "resize_method": spec.resize_method, "shard_films": shard_films,
                "rows": _fingerprint(manifest)}
    shards = _plan_shards(manifest.splits, shard_films)
    _start(out, settings, manifest)

    films = _film_stream(manifest, spec, depth)
    done = [s for s in shards if (out / s.file).is_file()]
    if done:
        log.info("%s: %d of %d shards already written, resuming", out, len(done), len(shards))
    iterator = progress(_shard_records(out, shards, films)) if progress else _shard_records(out, shards, films)
    for _ in iterator:
        pass
    write_text_atomic(out / INFO_FILE, json.dumps(
        {**settings, "status": "complete", "films": len(manifest),
         "shards": [s.__dict__ for s in shards]}, indent=2) + "\n")
    return out


def _start(out: Path, settings: dict, manifest: Manifest) -> None:
    info_file = out / INFO_FILE
    if info_file.is_file():
        previous = json.loads(info_file.read_text())
        previous = {k: previous.get(k) for k in settings}
        if previous != settings:
            changed = sorted(k for k in settings if previous[k] != settings[k])
            raise DatasetError(out, f"holds films prepared with other settings ({', '.join(changed)}); "
                                    "choose another --out or delete it")
        return
    out.mkdir(parents=True, exist_ok=True)
    manifest.save_csv(out / MANIFEST_FILE)
    write_text_atomic(info_file, json.dumps({**settings, "status": "preparing"}, indent=2) + "\n")


def _plan_shards(splits: np.ndarray, shard_films: int) -> list[Shard]:
    shards = []
    for split in dict.fromkeys(splits):  # in order of appearance (rows are grouped by split)
        rows = np.flatnonzero(splits == split)
        count = -(-len(rows) // shard_films)
        for k in range(count):
            start = int(rows[0]) + k * shard_films
            films = min(shard_films, int(rows[-1]) + 1 - start)
            shards.append(Shard(f"{split or 'unassigned'}-{k:05d}-of-{count:05d}.tfrecord",
                                split, start, films))
    return shards


def _film_stream(manifest: Manifest, spec: PreprocessingSpec, depth: int):
    """A function giving, for a range of rows, their quantised films in row order (decoded in
    parallel, a few films ahead)."""
    size = spec.image_size

    def decode(path):
        image = decode_image(path)
        shape = tf.shape(image)
        same = tf.logical_and(tf.equal(shape[0], size), tf.equal(shape[1], size))
        image = tf.cond(same, lambda: image, lambda: resize_image(image, spec))
        return tf.ensure_shape(image, [size, size, 1])

    def films(start: int, count: int):
        paths = manifest.paths[start:start + count].astype(str)
        ds = tf.data.Dataset.from_tensor_slices(paths).map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        for image in ds.prefetch(16).as_numpy_iterator():
            yield quantise(image[..., 0], depth)

    return films


def _shard_records(out: Path, shards: list[Shard], films):
    """Write each missing shard atomically; yield once per film (for a progress bar)."""
    for shard in shards:
        if (out / shard.file).is_file():
            yield from range(shard.films)
            continue
        with atomic_path(out / shard.file) as tmp:
            with tf.io.TFRecordWriter(str(tmp)) as writer:
                for row, pixels in enumerate(films(shard.start, shard.films), start=shard.start):
                    writer.write(encode_record(pixels, row))
                    yield row


def _fingerprint(manifest: Manifest) -> str:
    return hashlib.sha256(json.dumps([manifest.paths.tolist(), manifest.splits.tolist()])
                          .encode()).hexdigest()[:16]
