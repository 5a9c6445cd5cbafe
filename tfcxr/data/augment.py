"""Training-time augmentation of canonical images, reproducible from a seed.

Augmentation runs on batches of single-channel images in [0, 1] (before channel replication and
normalisation) with stateless random ops only, so a seed fixes every draw and no keras-cv import
(Keras 3) is needed. Rotation, translation, zoom and the optional flip are folded into one affine
matrix per image and resampled once (bilinear; uncovered borders are filled with 0, like
collimated film edge, rather than mirrored anatomy). Contrast scales around each image's mean,
brightness shifts it, and the result is clipped back to [0, 1].

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

    def __post_init__(self):
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
