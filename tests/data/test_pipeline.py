"""build_dataset and augmentation, on real NIH files at a small image size."""

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfcxr.backend import tf
from tfcxr.data.augment import AugmentConfig, augment_images
from tfcxr.data.images import load_image
from tfcxr.data.manifest import Manifest
from tfcxr.data.pipeline import build_dataset, preprocess_image
from tfcxr.errors import DatasetError
from tfcxr.preprocessing import PreprocessingSpec

SPEC = PreprocessingSpec(image_size=32)
LABELS = ("a", "b", "c")


def make_manifest(paths, seed=0):
    n = len(paths)
    rng = np.random.default_rng(seed)
    return Manifest("test", "/", LABELS, [str(p) for p in paths], [f"img{i}" for i in range(n)],
                    [f"p{i}" for i in range(n)], ["PA"] * n, ["train"] * n,
                    rng.integers(0, 2, (n, 3)), rng.integers(0, 2, (n, 3)))


@pytest.fixture(scope="module")
def manifest(nih_sample):
    paths = sorted((nih_sample / "images").glob("*.png"))[:10]
    return make_manifest(paths + [nih_sample / "images" / "00000100_000.png"])  # + one RGBA


def epoch(ds):
    """All batches of one pass, concatenated: ((images, index), labels, mask) or (images, ...)."""
    batches = list(ds.as_numpy_iterator())
    first = [b[0] for b in batches]
    if isinstance(first[0], tuple):
        first = (np.concatenate([f[0] for f in first]), np.concatenate([f[1] for f in first]))
    else:
        first = np.concatenate(first)
    return first, np.concatenate([b[1] for b in batches]), np.concatenate([b[2] for b in batches])


def unnormalise(images, spec=SPEC):
    return images * np.array(spec.std, np.float32) + np.array(spec.mean, np.float32)


def test_eval_batches_shapes_labels_and_mask(manifest):
    ds = build_dataset(manifest, SPEC, training=False, batch_size=4)
    batches = list(ds.as_numpy_iterator())
    assert [b[0].shape for b in batches] == [(4, 32, 32, 3)] * 2 + [(3, 32, 32, 3)]
    assert all(b[0].dtype == b[1].dtype == b[2].dtype == np.float32 for b in batches)
    images, labels, mask = epoch(ds)
    np.testing.assert_array_equal(labels, manifest.targets)  # evaluation keeps manifest order
    np.testing.assert_array_equal(mask, manifest.mask)
    expected = np.stack([preprocess_image(load_image(p), SPEC) for p in manifest.paths])
    np.testing.assert_allclose(images, expected, atol=1e-6)


def test_normalisation_of_a_known_pixel_and_replication(tmp_path):
    path = tmp_path / "flat.png"
    Image.fromarray(np.full((40, 48), 40000, np.uint16)).save(path)
    grey = 40000 / 65535
    spec = PreprocessingSpec(image_size=16, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5))
    images, _, _ = epoch(build_dataset(make_manifest([path]), spec, training=False, batch_size=1))
    assert images.shape == (1, 16, 16, 3)
    for c in range(3):
        np.testing.assert_allclose(images[..., c], (grey - spec.mean[c]) / spec.std[c], atol=1e-5)

    one = PreprocessingSpec(image_size=16, channels=1, mean=(0.25,), std=(0.5,))
    images, _, _ = epoch(build_dataset(make_manifest([path]), one, training=False, batch_size=1))
    assert images.shape == (1, 16, 16, 1)
    np.testing.assert_allclose(images, (grey - 0.25) / 0.5, atol=1e-5)


def test_channels_are_replicas_of_one_resized_channel(manifest):
    images, _, _ = epoch(build_dataset(manifest, SPEC, training=False, batch_size=8))
    pixels = unnormalise(images)
    np.testing.assert_allclose(pixels[..., 1], pixels[..., 0], atol=1e-6)
    np.testing.assert_allclose(pixels[..., 2], pixels[..., 0], atol=1e-6)


def test_index_joins_shuffled_rows_back_to_the_manifest(manifest):
    (images, index), labels, mask = epoch(build_dataset(
        manifest, SPEC, training=True, batch_size=3, drop_remainder=False, include_index=True))
    assert index.dtype == np.int64 and sorted(index) == list(range(len(manifest)))
    assert list(index) != sorted(index)  # shuffled
    np.testing.assert_array_equal(labels, manifest.targets[index])
    np.testing.assert_array_equal(mask, manifest.mask[index])
    reference, _, _ = epoch(build_dataset(manifest, SPEC, training=False, batch_size=4))
    np.testing.assert_array_equal(images, reference[index])  # no augmentation: same pixels


def test_shuffle_and_augment_are_deterministic_for_a_seed(manifest):
    def two_epochs(seed):
        ds = build_dataset(manifest, SPEC, training=True, batch_size=4, augment=AugmentConfig(),
                           shuffle_seed=seed, include_index=True)
        return [epoch(ds)[0] for _ in range(2)]

    (images, index), (images2, index2) = two_epochs(7)
    (again, again_index), (again2, again_index2) = two_epochs(7)
    np.testing.assert_array_equal(index, again_index)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(index2, again_index2)
    np.testing.assert_array_equal(images2, again2)
    assert not np.array_equal(index, index2)  # each epoch reshuffles
    other, other_index = two_epochs(8)[0]
    assert not np.array_equal(index, other_index)


def test_augmentation_in_training_only_and_in_range(manifest):
    reference, _, _ = epoch(build_dataset(manifest, SPEC, training=False, batch_size=4))
    evaluated, _, _ = epoch(build_dataset(manifest, SPEC, training=False, batch_size=4,
                                          augment=AugmentConfig()))
    np.testing.assert_array_equal(evaluated, reference)
    (images, index), _, _ = epoch(build_dataset(
        manifest, SPEC, training=True, batch_size=4, drop_remainder=False, augment=AugmentConfig(),
        include_index=True))
    changed = np.abs(images - reference[index]).max(axis=(1, 2, 3))
    assert (changed > 0.05).all()
    pixels = unnormalise(images)
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6


def test_augment_images_flip_convention_and_identity():
    images = tf.random.stateless_uniform([2, 8, 6, 1], [1, 2])
    mirror = AugmentConfig(flip_probability=1.0, rotation_degrees=0, translation=0, zoom=0,
                           contrast=0, brightness=0)
    flipped = augment_images(images, tf.constant([3, 4]), mirror)
    np.testing.assert_array_equal(flipped, tf.image.flip_left_right(images))
    nothing = AugmentConfig(rotation_degrees=0, translation=0, zoom=0, contrast=0, brightness=0)
    np.testing.assert_array_equal(augment_images(images, tf.constant([3, 4]), nothing), images)
    with pytest.raises(ValueError, match="rotation_degrees"):
        AugmentConfig(rotation_degrees=-1)


def test_cache_in_memory_and_on_disk_gives_the_same_batches(manifest, tmp_path):
    plain = epoch(build_dataset(manifest, SPEC, training=False, batch_size=4))
    for cache in (True, str(tmp_path / "cache")):
        ds = build_dataset(manifest, SPEC, training=False, batch_size=4, cache=cache)
        for _ in range(2):  # the second pass reads the cache
            for got, want in zip(epoch(ds), plain):
                np.testing.assert_array_equal(got, want)
    assert any((tmp_path / "cache").iterdir())
    cached_training = [epoch(build_dataset(manifest, SPEC, training=True, batch_size=4, cache=True,
                                           augment=AugmentConfig(), include_index=True))
                       for _ in range(2)]
    np.testing.assert_array_equal(cached_training[0][0][0], cached_training[1][0][0])


def test_empty_manifest_and_no_full_batch_are_clear_errors(manifest):
    with pytest.raises(DatasetError, match="no images"):
        build_dataset(manifest.select(np.zeros(len(manifest), bool)), SPEC, training=True,
                      batch_size=4)
    with pytest.raises(DatasetError, match="no full batch"):
        build_dataset(manifest, SPEC, training=True, batch_size=64)


def test_bad_file_named_or_skipped(manifest, tmp_path, caplog):
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(Path(manifest.paths[0]).read_bytes()[:5000])
    with_bad = make_manifest([*manifest.paths[:3], truncated, *manifest.paths[3:5]])
    with pytest.raises(tf.errors.OpError, match=f"{truncated}: truncated PNG"):
        epoch(build_dataset(with_bad, SPEC, training=False, batch_size=2))
    with caplog.at_level(logging.WARNING, logger="tfcxr.data"):
        (images, index), labels, _ = epoch(build_dataset(
            with_bad, SPEC, training=False, batch_size=2, skip_bad=True, include_index=True))
    assert list(index) == [0, 1, 2, 4, 5] and len(images) == 5
    np.testing.assert_array_equal(labels, with_bad.targets[index])
    assert "skipped 1 of 6 images" in caplog.text and str(truncated) in caplog.text
