"""Prepared films (tfcxr data prepare): the same numbers as decoding the originals, read from
sharded TFRecords, shuffled across shards, written atomically and resumably."""

import json

import numpy as np
import pytest
from PIL import Image

from tfcxr.data.pipeline import build_dataset
from tfcxr.data.prepare import prepare_films
from tfcxr.data.prepared import INFO_FILE, PreparedFilms
from tfcxr.data.readers.nih import read_nih
from tfcxr.errors import DatasetError
from tfcxr.preprocessing import PreprocessingSpec

SPEC = PreprocessingSpec(image_size=64)


@pytest.fixture(scope="module")
def sample(nih_sample):
    manifest = read_nih(nih_sample, val_fraction=0.1)
    rows = np.concatenate([np.flatnonzero(manifest.splits == s)[:n]
                           for s, n in (("train", 80), ("val", 20), ("test", 20))])
    return manifest.select(rows)


def images(manifest, spec=SPEC, **kwargs):
    ds = build_dataset(manifest, spec, training=False, batch_size=16, **kwargs)
    return np.concatenate([x for x, _, _ in ds.as_numpy_iterator()])


@pytest.fixture(scope="module")
def prepared_native(sample, tmp_path_factory):
    """The sample's 256 px films prepared at their own size (8 bits, as their PNGs)."""
    out = prepare_films(sample, tmp_path_factory.mktemp("prep") / "p256", size=256, shard_films=16)
    return PreparedFilms.load(out)


def test_native_size_reads_identical_tensors_for_every_split(sample, prepared_native):
    assert prepared_native.depth == 8 and len(prepared_native.shards) == 5 + 2 + 2
    prepared = prepared_native.manifest()
    for split in ("train", "val", "test"):
        original, from_shards = sample.split(split), prepared.split(split)
        assert (original.paths == from_shards.paths).all()
        a, b = images(original), images(from_shards)
        grey = np.array([Image.open(p).mode in ("L", "I;16") for p in original.paths])
        # Grey films: bit for bit. RGB(A) films (the sample has a few, with equal channels)
        # decode to a luma a few 1e-8 off the 8-bit grid, which the stored levels round away.
        np.testing.assert_array_equal(a[grey], b[grey])
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6)
        np.testing.assert_array_equal(original.targets, from_shards.targets)


def test_training_reads_every_film_once_per_epoch_shuffled_across_shards(prepared_native):
    train = prepared_native.manifest().split("train")
    ds = build_dataset(train, SPEC, training=True, batch_size=8, include_index=True)
    epochs = [np.concatenate([i for (_, i), _, _ in ds.as_numpy_iterator()]) for _ in range(2)]
    for order in epochs:
        assert sorted(order) == list(range(len(train)))  # every film once (5 full batches)
        assert len(set(order[:16] // 16)) > 2  # the first 16 films come from several shards
    assert (epochs[0] != epochs[1]).any()
    # Labels travel with their film whatever the order.
    (x, index), labels, _ = next(ds.as_numpy_iterator())
    np.testing.assert_array_equal(labels, train.targets[index])


def test_training_size_prepared_films_within_half_a_grey_level(sample, tmp_path):
    out = prepare_films(sample.split("val"), tmp_path / "p64", size=64, depth=16)
    prepared = PreparedFilms.load(out)
    assert prepared.depth == 16
    original, from_shards = images(sample.split("val")), images(prepared.manifest())
    # Stored 16-bit, so the films differ by at most half a 16-bit level (in [0, 1] units) times
    # the normalisation's 1/std.
    assert np.abs(original - from_shards).max() <= 0.5 / 65535 / min(SPEC.std) + 1e-6


def test_rerun_resumes_and_other_settings_are_refused(sample, tmp_path):
    part = sample.split("val")
    out = prepare_films(part, tmp_path / "p", size=32, shard_films=8)
    shard = out / PreparedFilms.load(out).shards[1].file
    stamp = shard.stat().st_mtime_ns
    shard_2 = out / PreparedFilms.load(out).shards[2].file
    shard_2.unlink()  # as if killed before the last shard was written
    info = json.loads((out / INFO_FILE).read_text())
    info["status"] = "preparing"
    (out / INFO_FILE).write_text(json.dumps(info))
    prepare_films(part, out, size=32, shard_films=8)
    assert shard.stat().st_mtime_ns == stamp and shard_2.is_file()
    assert not list(out.glob(".*tmp*"))  # no temporary files left
    with pytest.raises(DatasetError, match="other settings.*size"):
        prepare_films(part, out, size=48, shard_films=8)


def test_incomplete_folder_and_unprepared_films_are_clear_errors(sample, prepared_native, tmp_path):
    with pytest.raises(DatasetError, match="not a prepared folder"):
        PreparedFilms.load(tmp_path)
    other = sample.select(np.arange(4))
    other.paths = other.paths.astype(object) + ".missing"
    other.prepared = prepared_native.root
    with pytest.raises(DatasetError, match="4 of 4 films were not prepared"):
        images(other)


def test_config_reads_prepared_folder_and_refuses_other_reader_options(prepared_native):
    from tfcxr.config import DataConfig
    from tfcxr.errors import ConfigError

    root = str(prepared_native.root)
    manifest = DataConfig(dataset="nih", prepared=root, options={}).read_manifest()
    assert manifest.prepared == prepared_native.root and len(manifest) == 120
    with pytest.raises(ConfigError, match="prepared from dataset 'nih'.*prepare it again"):
        DataConfig(dataset="nih", prepared=root, options={"views": ["PA"]}).read_manifest()
