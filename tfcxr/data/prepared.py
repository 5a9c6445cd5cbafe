"""Prepared films: every film decoded and resized once, stored as sharded TFRecords.

A prepared folder (written by ``tfcxr data prepare``, see ``tfcxr.data.prepare``) holds

- ``prepared.json``: the format, the source dataset and its reader options, the film size and bit
  depth, the resize method and one entry per shard (file, split, first row, number of films);
- ``manifest.csv``: the manifest that was prepared (original paths, labels, splits), row ``r`` of
  which is the record whose ``row`` feature is ``r``;
- ``<split>-<k>-of-<n>.tfrecord``: shards of consecutive manifest rows, one split per shard. A
  record is ``image`` (the film as raw little-endian uint8 or uint16, ``size`` x ``size``, one
  channel) and ``row``.

Pixels are stored as the canonical decode (``tfcxr.data.images``) quantised to the bit depth:
``round(x * 255)`` or ``round(x * 65535)``. Reading widens them exactly as the PNG decoder does
(8-bit ``v`` to ``257 v / 65535``), so a film stored at its own size, with the depth of its file,
reads back to the identical float32 values decoding the file gives, and everything after (the
pipeline's resize to the model's size, augmentation, normalisation) is identical too. A film that
had to be resized to the prepared size differs from the on-the-fly path by the quantisation (at
most half a grey level) plus, when the model's size differs again, a second resize.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfcxr.backend import tf
from tfcxr.data.manifest import Manifest
from tfcxr.errors import DatasetError

FORMAT = "tfcxr-prepared/1"
INFO_FILE = "prepared.json"
MANIFEST_FILE = "manifest.csv"
DEPTH_DTYPES = {8: tf.uint8, 16: tf.uint16}
DEPTH_MAX = {8: 255.0, 16: 65535.0}


@dataclass(frozen=True)
class Shard:
    file: str
    split: str
    start: int  # first manifest row in this shard
    films: int


@dataclass(frozen=True)
class PreparedFilms:
    """A complete prepared folder, as read from its ``prepared.json``."""

    root: Path
    dataset: str
    options: dict
    size: int
    depth: int
    resize_method: str
    shards: tuple[Shard, ...]

    @classmethod
    def load(cls, root: str | Path) -> "PreparedFilms":
        return _load(Path(root).resolve())

    @property
    def films(self) -> int:
        return sum(s.films for s in self.shards)

    def manifest(self) -> Manifest:
        """The prepared manifest (original paths, labels and splits), pointing at this folder."""
        manifest = Manifest.load_csv(self.root / MANIFEST_FILE, dataset=self.dataset)
        manifest.prepared = self.root
        return manifest

    def rows_of(self, paths: np.ndarray) -> np.ndarray:
        """The prepared row of each path, -1 where a path was not prepared."""
        return _path_index(self.root).get_indexer(paths)

    def records(self, rows: np.ndarray, position: np.ndarray, *, shuffle_seed: int | None,
                shuffle_buffer: int = 1024, cycle_length: int = 8):
        """``(stored pixels, position)`` of the films of ``rows`` (prepared rows), where
        ``position`` ([prepared films], -1 for films to skip) maps a prepared row to the caller's
        own index; ``widen`` turns the pixels into the canonical image.

        ``shuffle_seed`` None reads the shards in order, one after the other. Otherwise the order
        of the shards is shuffled every epoch, ``cycle_length`` of them are read at once, record by
        record, and the records pass a ``shuffle_buffer`` (of stored, not yet widened pixels)."""
        starts = np.array([s.start for s in self.shards])
        needed = np.unique(np.searchsorted(starts, rows, side="right") - 1)
        files = [str(self.root / self.shards[i].file) for i in needed]
        table = tf.constant(position, tf.int64)
        ds = tf.data.Dataset.from_tensor_slices(files)
        if shuffle_seed is None:
            ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=1)
        else:
            ds = ds.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
            ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(cycle_length, len(files)),
                               block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
                               deterministic=True)
        ds = ds.map(lambda record: _parse(record, table), num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.filter(lambda pixels, at: at >= 0)
        if shuffle_seed is not None:
            ds = ds.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
        return ds

    def widen(self, pixels: tf.Tensor) -> tf.Tensor:
        """Stored pixels (serialized strings of any shape [...]) to float32 [..., size, size, 1]
        in [0, 1]."""
        flat = tf.io.decode_raw(pixels, DEPTH_DTYPES[self.depth], little_endian=True)
        pixels = tf.reshape(flat, tf.concat([tf.shape(flat)[:-1], [self.size, self.size, 1]], 0))
        if self.depth == 8:  # widened in integers, as decode_png does (a float multiply by 257
            pixels = tf.cast(pixels, tf.uint16) * 257  # would be folded into the next one)
        return tf.cast(pixels, tf.float32) * (1.0 / 65535.0)  # as images.py multiplies


def _parse(record, table):
    features = tf.io.parse_single_example(record, {
        "image": tf.io.FixedLenFeature([], tf.string),
        "row": tf.io.FixedLenFeature([], tf.int64)})
    return features["image"], tf.gather(table, features["row"])


def quantise(image: np.ndarray, depth: int) -> np.ndarray:
    """Canonical float pixels in [0, 1] to the stored integers of ``depth`` bits."""
    dtype = np.uint8 if depth == 8 else np.uint16
    return np.round(np.clip(image, 0.0, 1.0) * DEPTH_MAX[depth]).astype(dtype)


def encode_record(pixels: np.ndarray, row: int) -> bytes:
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()])),
        "row": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(row)])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@functools.lru_cache(maxsize=8)
def _load(root: Path) -> PreparedFilms:
    info_file = root / INFO_FILE
    if not info_file.is_file():
        raise DatasetError(root, f"no {INFO_FILE}: not a prepared folder (write one with "
                                 "`tfcxr data prepare`)")
    info = json.loads(info_file.read_text())
    if info.get("format") != FORMAT:
        raise DatasetError(info_file, f"format {info.get('format')!r}; this tfcxr reads {FORMAT}")
    if info.get("status") != "complete":
        raise DatasetError(root, "preparation did not finish; rerun the same `tfcxr data "
                                 "prepare` command to complete it")
    shards = tuple(Shard(**s) for s in info["shards"])
    missing = [s.file for s in shards if not (root / s.file).is_file()]
    if missing:
        raise DatasetError(root, f"{len(missing)} shard(s) missing, e.g. {missing[0]}")
    return PreparedFilms(root, info["dataset"], info["options"], int(info["size"]),
                         int(info["depth"]), info["resize_method"], shards)


@functools.lru_cache(maxsize=8)
def _path_index(root: Path):
    import pandas as pd

    return pd.Index(PreparedFilms.load(root).manifest().paths)
