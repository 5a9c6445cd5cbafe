"""From a Manifest to the batches a Keras model trains on.

Per image: decode to the canonical single channel in [0, 1] -> resize to ``spec.image_size``
(resizing one channel, not three) -> [cache] -> [shuffle] -> batch -> augment (training only) ->
replicate to ``spec.channels`` -> normalise with ``spec.mean`` / ``spec.std``. The cache sits after
decode and resize, so an epoch from cache costs no decoding, and before augmentation, so cached
images are still augmented afresh every epoch.

Batches are ``(images, labels, mask)``: Keras ``fit`` reads the third element as the sample weight
and multiplies it into the loss elementwise. That needs a loss returning one value per label
([B, C], e.g. ``keras.backend.binary_crossentropy``); ``keras.losses.BinaryCrossentropy`` averages
over labels first and ``fit`` then rejects the [B, C] weight with a ValueError. Keras averages the
weighted values over all B x C entries, masked ones included.
With ``include_index=True`` the first element becomes ``(images, index)``, where ``index`` is the
int64 manifest row of each image, so a caller can join per-image extras (teacher logits, ids)
whatever the shuffle order.

A manifest with ``prepared`` set (``tfcxr data prepare``; ``data.prepared`` in a config) is read
from its prepared shards instead of the original files: decoded and resized to the prepared size
once, they enter this pipeline at the resize (skipped when the sizes match), so everything after
it is the same; ``cache`` is ignored (the shards are the cache). Training reads several shards at
once, in an order shuffled every epoch, through a shuffle buffer of ``PREPARED_SHUFFLE_BUFFER``
films. Evaluation reads them in order, which is the manifest's order for any subset of a prepared
manifest; a manifest in another order (or with a film twice) is decoded from the originals.

Randomness is seeded by ``shuffle_seed`` and nothing else in tfcxr (TensorFlow's global seed, if
a caller sets one, also enters): the same seed gives the same order and the same augmentation,
epoch by epoch, and each epoch differs from the one before.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from tfcxr.backend import tf
from tfcxr.data.augment import AugmentConfig, augment_dataset
from tfcxr.data.images import decode_image, find_bad_images
from tfcxr.data.manifest import Manifest
from tfcxr.data.prepared import PreparedFilms
from tfcxr.errors import DatasetError
from tfcxr.preprocessing import PreprocessingSpec

log = logging.getLogger("tfcxr.data")

# With a cache, shuffling happens on decoded images, which a buffer holds in memory; rows are
# permuted once by the seed before caching, so this buffer only has to mix neighbours.
CACHED_SHUFFLE_BUFFER = 2048
PREPARED_SHUFFLE_BUFFER = 1024


def build_dataset(manifest: Manifest, spec: PreprocessingSpec, *, training: bool, batch_size: int,
                  augment: AugmentConfig | None = None, shuffle_seed: int = 0,
                  cache: bool | str | Path = False, drop_remainder: bool | None = None,
                  include_index: bool = False, skip_bad: bool = False) -> tf.data.Dataset:
    """A batched, prefetched ``tf.data.Dataset`` over every row of ``manifest``.

    training: shuffle every epoch and apply ``augment`` (ignored when False).
    shuffle_seed: seeds both the shuffle and the augmentation.
    cache: False, True (in memory) or a directory for a file cache. The file name inside it is a
        fingerprint of the rows, their order and ``spec``, so a changed manifest or image size
        never reads a stale cache. TensorFlow fills a cache during the first complete pass and
        discards a partial one.
    drop_remainder: default ``training``: full batches for training, every image for evaluation.
    skip_bad: check the files first (``find_bad_images``: end markers of PNG/JPEG, full decode of
        anything else), drop the rows that fail and log how many and which. Without it, a bad
        file stops iteration with an error naming it.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    prepared = _prepared_rows(manifest, training, skip_bad)
    rows = prepared[0] if prepared else _usable_rows(manifest, skip_bad)
    drop_remainder = training if drop_remainder is None else drop_remainder
    if drop_remainder and len(rows) < batch_size:
        raise DatasetError(manifest.root, f"{len(rows)} images make no full batch of {batch_size} "
                                          "(lower batch_size or pass drop_remainder=False)")
    after_batch = None  # prepared films at the model's size: decoded after batching
    if prepared:
        ds, after_batch = _read_prepared(manifest, *prepared, spec, training, shuffle_seed)
        cache = False
    else:
        ds = _read_files(manifest, rows, spec, training, shuffle_seed, cache)
    if cache:
        ds = ds.cache("" if cache is True else _cache_file(Path(cache), manifest, rows, spec))
        if training:
            ds = ds.shuffle(min(len(rows), CACHED_SHUFFLE_BUFFER), seed=shuffle_seed,
                            reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if after_batch is not None:
        ds = ds.map(after_batch, num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment is not None:
        ds = augment_dataset(ds, augment, shuffle_seed)

    def finish(images, labels, mask, index):
        images = to_model_input(images, spec)
        return ((images, index) if include_index else images), labels, mask

    return ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _read_files(manifest, rows, spec, training, shuffle_seed, cache):
    if training and cache:
        rows = np.random.default_rng(shuffle_seed).permutation(rows)
    ds = tf.data.Dataset.from_tensor_slices((
        manifest.paths[rows].astype(str), manifest.targets[rows], manifest.mask[rows],
        rows.astype(np.int64)))
    if training and not cache:
        ds = ds.shuffle(len(rows), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.map(lambda path, *rest: (resize_image(decode_image(path, spec.dicom_window), spec), *rest),
                  num_parallel_calls=tf.data.AUTOTUNE)


def _prepared_rows(manifest: Manifest, training: bool, skip_bad: bool):
    """``(rows, store, prepared rows)`` to read from prepared shards, or None to decode files."""
    if manifest.prepared is None:
        return None
    store = PreparedFilms.load(manifest.prepared)
    rows = np.arange(len(manifest))
    at = store.rows_of(manifest.paths)
    if (at < 0).any():
        missing = manifest.paths[at < 0]
        if not skip_bad:
            raise DatasetError(store.root, f"{len(missing)} of {len(manifest)} films were not "
                                           f"prepared (e.g. {missing[0]}); prepare them again")
        log.warning("skipped %d of %d films not in the prepared data %s", len(missing),
                    len(manifest), store.root)
        rows, at = rows[at >= 0], at[at >= 0]
    if not len(rows):
        raise DatasetError(manifest.root, f"no images to build a {manifest.dataset!r} dataset from")
    if len(np.unique(at)) != len(at) or (not training and (np.diff(at) < 0).any()):
        log.warning("%s: rows repeat or are out of the prepared order; decoding the original files",
                    store.root)
        return None
    return rows, store, at


def _read_prepared(manifest, rows, store: PreparedFilms, at, spec, training, shuffle_seed):
    position = np.full(store.films, -1)
    position[at] = np.arange(len(rows))
    targets, mask = tf.constant(manifest.targets[rows]), tf.constant(manifest.mask[rows])
    index = tf.constant(rows.astype(np.int64))
    ds = store.records(at, position, shuffle_seed=shuffle_seed if training else None,
                       shuffle_buffer=PREPARED_SHUFFLE_BUFFER)
    if store.size != spec.image_size:
        def film(pixels, i):
            image = resize_image(store.widen(pixels), spec)
            return image, tf.gather(targets, i), tf.gather(mask, i), tf.gather(index, i)

        return ds.map(film, num_parallel_calls=tf.data.AUTOTUNE), None
    # At the model's size the films need no resize: widen them and look up their labels a batch
    # at a time, after batching.
    def batch_of_films(pixels, i):
        return store.widen(pixels), tf.gather(targets, i), tf.gather(mask, i), tf.gather(index, i)

    return ds, batch_of_films


def resize_image(image: tf.Tensor, spec: PreprocessingSpec) -> tf.Tensor:
    """[H, W, 1] in [0, 1] to [S, S, 1] in [0, 1].

    Antialiased, because radiographs are shrunk four- to eightfold (1024 or more to 224) and plain
    bilinear sampling at that ratio skips pixels and aliases fine lines; clipped, because bicubic
    and Lanczos kernels overshoot at edges.
    """
    size = (spec.image_size, spec.image_size)
    resized = tf.image.resize(image, size, method=spec.resize_method, antialias=True)
    return tf.clip_by_value(resized, 0.0, 1.0)


def to_model_input(images: tf.Tensor, spec: PreprocessingSpec) -> tf.Tensor:
    """Single-channel images in [0, 1] (any leading shape) to ``spec.channels``, normalised."""
    if spec.channels > 1:
        images = tf.repeat(images, spec.channels, axis=-1)
    return (images - tf.constant(spec.mean)) / tf.constant(spec.std)


def preprocess_image(image: np.ndarray, spec: PreprocessingSpec) -> np.ndarray:
    """One canonical [H, W] image (``load_image``) to the model input [S, S, C], as in evaluation."""
    resized = resize_image(tf.convert_to_tensor(image, tf.float32)[..., tf.newaxis], spec)
    return to_model_input(resized, spec).numpy()


def _usable_rows(manifest: Manifest, skip_bad: bool) -> np.ndarray:
    rows = np.arange(len(manifest))
    if skip_bad and len(rows):
        bad = find_bad_images(manifest.paths)
        if bad:
            rows = rows[~np.isin(manifest.paths, list(bad))]
            examples = "; ".join(f"{path}: {problem}" for path, problem in list(bad.items())[:5])
            log.warning("skipped %d of %d images that cannot be decoded (%s%s)", len(bad),
                        len(manifest), examples, "; ..." if len(bad) > 5 else "")
    if not len(rows):
        raise DatasetError(manifest.root, f"no images to build a {manifest.dataset!r} dataset from "
                                          "(empty split, or every image was skipped as bad)")
    return rows


def _cache_file(directory: Path, manifest: Manifest, rows: np.ndarray,
                spec: PreprocessingSpec) -> str:
    fingerprint = hashlib.sha256(json.dumps({
        "spec": spec.to_dict(), "paths": manifest.paths[rows].tolist(),
    }).encode()).hexdigest()[:16]
    directory.mkdir(parents=True, exist_ok=True)
    return str(directory / f"{manifest.dataset}-{spec.image_size}px-{fingerprint}")
