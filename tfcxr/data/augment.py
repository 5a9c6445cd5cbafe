"""Training-time augmentation of canonical images, reproducible from a seed.

Augmentation runs on batches of single-channel images in [0, 1] (before channel replication and
normalisation) with stateless random ops only, so a seed fixes every draw and no keras-cv import
(Keras 3) is needed. Rotation, translation, zoom and the optional flip are folded into one affine
matrix per image and resampled once (bilinear; uncovered borders are filled with 0, like
collimated film edge, rather than mirrored anatomy). Contrast scales around each image's mean,
brightness shifts it, and the result is clipped back to [0, 1].

Two backends, as data (``AugmentConfig.backend``): ``tf`` (default), the stateless ops here, one
seed per batch, so batches can be augmented in parallel and still reproduce exactly; and
``keras_cv`` (``pip install 'tfcxr[keras-cv]'``), the same five transforms as keras-cv layers
under tf-keras (``tfcxr.data.augment_keras_cv``). The default stays ``tf``: keras-cv is in
maintenance, pulls Keras 3, kagglehub and tensorflow-datasets beside tf-keras, and its Keras 2
path is tested upstream only up to TF 2.15; its layers draw from their own seeded generators, so
reproducing a run needs them applied in order, one batch at a time.

Horizontal flip is off by default: a frontal chest film has a laterality (heart, aortic knob and
gastric bubble on the patient's left; side markers burned into the image), and a mirrored film is
an anatomically different patient (situs inversus). The geometric defaults are small, in the range
of real positioning variation between films.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from tfcxr.backend import tf


@dataclass(frozen=True)
class AugmentConfig:
    flip_probability: float = 0.0  # horizontal flip; see the module docstring for why 0
    rotation_degrees: float = 7.0  # angle drawn from [-r, r]
    translation: float = 0.05  # shift drawn from [-t, t] x image size, per axis
    zoom: float = 0.1  # scale drawn from [1 - z, 1 + z]; > 1 magnifies
    contrast: float = 0.1  # factor drawn from [1 - c, 1 + c], applied around the image mean
    brightness: float = 0.05  # offset drawn from [-b, b], in units of the [0, 1] range
    backend: str = "tf"  # tf (stateless ops, default) | keras_cv (keras-cv layers)

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"AugmentConfig.backend must be one of {sorted(BACKENDS)}, "
                             f"got {self.backend!r}")
        checks = {
            "flip_probability": 0 <= self.flip_probability <= 1,
            "rotation_degrees": 0 <= self.rotation_degrees < 180,
            "translation": 0 <= self.translation < 1,
            "zoom": 0 <= self.zoom < 1,
            "contrast": 0 <= self.contrast < 1,
            "brightness": 0 <= self.brightness < 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"AugmentConfig.{name} out of range: {getattr(self, name)}")

    @property
    def geometric(self) -> bool:
        return any((self.flip_probability, self.rotation_degrees, self.translation, self.zoom))

    def to_dict(self) -> dict:
        return asdict(self)


def augment_dataset(ds: tf.data.Dataset, config: AugmentConfig, seed: int) -> tf.data.Dataset:
    """Augment a dataset of batches ``(images, *rest)`` with ``config.backend``; the same seed
    gives the same augmentation, epoch by epoch, and each epoch differs from the one before."""
    return BACKENDS[config.backend](ds, config, seed)


def _tf_backend(ds: tf.data.Dataset, config: AugmentConfig, seed: int) -> tf.data.Dataset:
    # One int64 per batch, a new stream every epoch, the streams fixed by the seed.
    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    base = tf.constant(seed, tf.int64)

    def augment_batch(batch, draw):
        images, *rest = batch
        return (augment_images(images, tf.stack([draw, base]), config), *rest)

    return tf.data.Dataset.zip((ds, draws)).map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE)


def _keras_cv_backend(ds: tf.data.Dataset, config: AugmentConfig, seed: int) -> tf.data.Dataset:
    # keras-cv is an optional extra: imported only when a config asks for it.
    from tfcxr.data.augment_keras_cv import keras_cv_augmenter

    augment = keras_cv_augmenter(config, seed)

    def augment_batch(images, *rest):
        return (augment(images), *rest)

    # In order, one batch at a time: the layers' generators advance batch by batch.
    return ds.map(augment_batch, num_parallel_calls=None, deterministic=True)


BACKENDS = {"tf": _tf_backend, "keras_cv": _keras_cv_backend}


def augment_images(images: tf.Tensor, seed: tf.Tensor, config: AugmentConfig) -> tf.Tensor:
    """Augment a batch [B, H, W, C] of images in [0, 1]; ``seed`` is a shape-[2] integer tensor.

    Each image gets its own draws; the same seed and batch always give the same output.
    """
    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, num=7)

    def uniform(i, low, high):
        return tf.random.stateless_uniform([batch], seeds[i], low, high)

    if config.geometric:
        angle = uniform(0, -1.0, 1.0) * math.radians(config.rotation_degrees)
        scale = uniform(1, 1.0 - config.zoom, 1.0 + config.zoom)
        shift = tf.stack([uniform(2, -1.0, 1.0), uniform(3, -1.0, 1.0)], axis=1) * config.translation
        mirror = tf.where(uniform(4, 0.0, 1.0) < config.flip_probability, -1.0, 1.0)
        images = _affine(images, angle, scale, shift, mirror)
    if config.contrast:
        factor = uniform(5, 1.0 - config.contrast, 1.0 + config.contrast)[:, None, None, None]
        mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        images = (images - mean) * factor + mean
    if config.brightness:
        images = images + uniform(6, -config.brightness, config.brightness)[:, None, None, None]
    return tf.clip_by_value(images, 0.0, 1.0)


def _affine(images, angle, scale, shift, mirror):
    """Resample each image through rotation, zoom, translation and mirroring about its centre.

    ImageProjectiveTransformV3 maps every output pixel (x, y) to the input point
    (a0 x + a1 y + a2, b0 x + b1 y + b2); here input = M (output - centre) + centre - shift, with
    M = rotation(angle) / scale, its first column negated for mirrored images.
    """
    size = tf.cast(tf.shape(images)[1:3], tf.float32)  # (height, width)
    cy, cx = (size[0] - 1.0) / 2.0, (size[1] - 1.0) / 2.0
    tx, ty = shift[:, 0] * size[1], shift[:, 1] * size[0]
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    a0, a1 = cos * mirror, -sin
    b0, b1 = sin * mirror, cos
    a2 = cx - a0 * cx - a1 * cy - tx
    b2 = cy - b0 * cx - b1 * cy - ty
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
