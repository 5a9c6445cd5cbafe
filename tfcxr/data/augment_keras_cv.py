"""The ``keras_cv`` augmentation backend: ``AugmentConfig``'s transforms as keras-cv layers.

Optional (``pip install 'tfcxr[keras-cv]'``); keras-cv 0.9 runs under tf-keras (its layers are
tf-keras layers). Each layer gets its own seed derived from the run's seed, so a run reproduces;
the parameters mean what they mean for the ``tf`` backend: rotation in degrees, translation and
zoom as fractions of the image size, contrast around the image mean, brightness in units of the
[0, 1] range, borders filled with 0.
"""

from __future__ import annotations

from typing import Callable

from tfcxr.backend import tf
from tfcxr.data.augment import AugmentConfig
from tfcxr.errors import ConfigError

try:
    import keras_cv
except ImportError:  # the optional extra is not installed
    keras_cv = None


def keras_cv_augmenter(config: AugmentConfig, seed: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """A function augmenting a batch [B, H, W, 1] of images in [0, 1] through keras-cv layers."""
    if keras_cv is None:
        raise ConfigError("data.augment.backend: keras_cv needs keras-cv; install it with "
                          "pip install 'tfcxr[keras-cv]' (or use backend: tf, the default)")
    layers = keras_cv.layers
    steps = []
    if config.flip_probability:
        steps.append(lambda s: layers.RandomFlip("horizontal", rate=config.flip_probability, seed=s))
    if config.rotation_degrees:
        steps.append(lambda s: layers.RandomRotation(config.rotation_degrees / 360.0,
                                                     fill_mode="constant", fill_value=0.0, seed=s))
    if config.zoom:
        steps.append(lambda s: layers.RandomZoom((-config.zoom, config.zoom), fill_mode="constant",
                                                 fill_value=0.0, seed=s))
    if config.translation:
        steps.append(lambda s: layers.RandomTranslation(config.translation, config.translation,
                                                        fill_mode="constant", fill_value=0.0, seed=s))
    if config.contrast:
        steps.append(lambda s: _seeded_factor(layers.RandomContrast((0.0, 1.0), config.contrast),
                                              1.0 - config.contrast, 1.0 + config.contrast, s))
    if config.brightness:
        steps.append(lambda s: _seeded_factor(layers.RandomBrightness(config.brightness, (0.0, 1.0)),
                                              -config.brightness, config.brightness, s))
    # keras-cv treats seed 0 (falsy) as "no seed" and draws from TF's global generator: never 0.
    built = [make(abs(seed) * 100 + i + 1) for i, make in enumerate(steps)]

    def augment(images: tf.Tensor) -> tf.Tensor:
        for layer in built:
            images = layer(images, training=True)
        return tf.clip_by_value(images, 0.0, 1.0)

    return augment


def _seeded_factor(layer, low: float, high: float, seed: int):
    """Contrast and brightness draw their factor through ``layer.factor``, a sampler whose
    ``tf.random.uniform`` ignores the layer's seed; give it a seeded generator like the others'."""
    layer.factor = _GeneratorSampler(low, high, seed)
    return layer


class _GeneratorSampler:
    """A keras-cv factor sampler (``sampler(shape, dtype)``) drawing from a seeded generator."""

    def __init__(self, low: float, high: float, seed: int):
        self.low, self.high = low, high
        self.generator = tf.random.Generator.from_seed(seed)

    def __call__(self, shape=(), dtype="float32"):
        return self.generator.uniform(shape, self.low, self.high, dtype=dtype)
