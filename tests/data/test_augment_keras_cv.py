"""The optional keras-cv augmentation backend (``augment.backend: keras_cv``) on real NIH films:
reproducible by seed inside tf.data, fresh every epoch, the same transforms as the tf backend."""

import numpy as np
import pytest

from test_pipeline import SPEC, epoch, make_manifest, unnormalise
from tfcxr.backend import tf
from tfcxr.config import load_data_config
from tfcxr.data import augment_keras_cv
from tfcxr.data.augment import AugmentConfig, augment_dataset
from tfcxr.data.pipeline import build_dataset
from tfcxr.errors import ConfigError

needs_keras_cv = pytest.mark.skipif(augment_keras_cv.keras_cv is None,
                                    reason="keras-cv not installed (pip install 'tfcxr[keras-cv]')")
KERAS_CV = AugmentConfig(backend="keras_cv")


@pytest.fixture(scope="module")
def manifest(nih_sample):
    return make_manifest(sorted((nih_sample / "images").glob("*.png"))[:12])


@needs_keras_cv
def test_keras_cv_augmentation_reproduces_by_seed_in_tf_data(manifest):
    def two_epochs(seed):
        ds = build_dataset(manifest, SPEC, training=True, batch_size=4, augment=KERAS_CV,
                           shuffle_seed=seed, include_index=True)
        return [epoch(ds)[0] for _ in range(2)]

    (images, index), (images2, _) = two_epochs(3)
    (again, again_index), (again2, _) = two_epochs(3)
    np.testing.assert_array_equal(index, again_index)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(images2, again2)
    (other, other_index) = two_epochs(4)[0]
    order = np.argsort(index), np.argsort(other_index)
    assert not np.allclose(images[order[0]], other[order[1]])  # another seed, other draws
    reference, _, _ = epoch(build_dataset(manifest, SPEC, training=False, batch_size=4))
    changed = np.abs(images - reference[index]).max(axis=(1, 2, 3))
    assert (changed > 0.05).all()  # every film augmented
    pixels = unnormalise(images)
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6


@needs_keras_cv
def test_each_epoch_draws_afresh():
    images = tf.random.stateless_uniform([8, 32, 32, 1], [1, 2])
    ds = augment_dataset(tf.data.Dataset.from_tensor_slices((images, tf.range(8))).batch(4),
                         KERAS_CV, seed=0)  # seed 0 too: keras-cv reads 0 as "unseeded"
    first, second = ([b[0].numpy() for b in ds] for _ in range(2))
    assert not np.allclose(np.concatenate(first), np.concatenate(second))
    again = augment_dataset(tf.data.Dataset.from_tensor_slices((images, tf.range(8))).batch(4),
                            KERAS_CV, seed=0)
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in again]), np.concatenate(first))


@needs_keras_cv
def test_keras_cv_contrast_and_brightness_stay_in_their_ranges():
    images = tf.random.stateless_uniform([64, 16, 16, 1], [5, 6], 0.3, 0.7)
    only = dict(rotation_degrees=0, translation=0, zoom=0, backend="keras_cv")
    ds = tf.data.Dataset.from_tensor_slices((images, tf.range(64))).batch(64)
    contrast = next(iter(augment_dataset(ds, AugmentConfig(**only, contrast=0.2, brightness=0),
                                         seed=1)))[0].numpy()
    ratio = contrast.std(axis=(1, 2, 3)) / images.numpy().std(axis=(1, 2, 3))
    assert 0.8 - 1e-4 <= ratio.min() and ratio.max() <= 1.2 + 1e-4 and ratio.std() > 0.05
    bright = next(iter(augment_dataset(ds, AugmentConfig(**only, contrast=0, brightness=0.1),
                                       seed=1)))[0].numpy()
    shift = (bright - images.numpy()).mean(axis=(1, 2, 3))
    assert np.abs(shift).max() <= 0.1 + 1e-5 and shift.std() > 0.02


def test_the_backend_is_config_data_and_a_missing_keras_cv_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  augment: {backend: keras-cv}\n")
    with pytest.raises(ConfigError, match="backend must be one of"):
        load_data_config(path)
    assert AugmentConfig().backend == "tf"  # the default stays the stateless tf ops
    monkeypatch.setattr(augment_keras_cv, "keras_cv", None)
    ds = tf.data.Dataset.from_tensor_slices((tf.zeros([4, 8, 8, 1]), tf.range(4))).batch(2)
    with pytest.raises(ConfigError, match=r"pip install 'tfcxr\[keras-cv\]'"):
        augment_dataset(ds, KERAS_CV, seed=0)
