"""Shared by the Grad-CAM tests: random-but-not-trivial weights and images with structure."""

import numpy as np

from tfcxr import models
from tfcxr.backend import keras


def blob_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """[n, size, size, 3] normalised-range images: a few Gaussian blobs plus noise, so that
    feature maps (and Grad-CAM maps) vary from place to place."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = []
    for _ in range(n):
        image = np.zeros((size, size))
        for _ in range(4):
            cy, cx, r, a = rng.random(), rng.random(), 0.05 + 0.2 * rng.random(), 2 * rng.normal()
            image += a * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / r ** 2)
        images.append(image[..., None] + 0.1 * rng.normal(size=(size, size, 3)))
    return np.asarray(images, np.float32)


def blob_pixels(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``blob_images`` as a phone would hold them: integer pixel values in 0..255 (float32)."""
    return np.clip(np.round(128 + 50 * blob_images(n, size, seed)), 0, 255).astype(np.float32)


def random_model(name: str, num_classes: int, size: int, calibration: np.ndarray,
                 seed: int = 0) -> keras.Model:
    """Registered model ``name`` with seeded initial weights, then ``randomize``d.

    Seeded because h-swish's derivative jumps at +-3: an unseeded draw now and then puts a head
    pre-activation within float noise of a jump, and two correct float paths then disagree.
    """
    keras.utils.set_random_seed(seed)
    model = models.create(name, num_classes=num_classes, input_shape=(size, size, 3))
    return randomize(model, calibration, seed=seed)


def randomize(model: keras.Model, images: np.ndarray, seed: int = 0) -> keras.Model:
    """Random BatchNorm scales and shifts with moving statistics taken from ``images`` (features
    normalised per channel, as in a trained network, so maps are not one constant), and random
    classifier weights and biases (so labels differ)."""
    rng = np.random.default_rng(seed)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        gamma, beta, mean, variance = layer.get_weights()
        layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.3, beta.shape),
                           mean, variance])
        layer.momentum = 0.0  # one training-mode pass sets the moving statistics
    model(images, training=True)
    for layer in norms:
        layer.momentum = 0.9
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)) and layer.name in (
                "logits", "feature_mix_layer.conv"):
            layer.set_weights([rng.normal(0, 1 / np.sqrt(np.prod(w.shape[:-1])), w.shape)
                               if w.ndim > 1 else rng.normal(0, 0.3, w.shape)
                               for w in layer.get_weights()])
    return model


def label_correlations(maps: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Pearson correlation per label over all images and positions of [N, L, h, w] maps; NaN
    for a label whose reference maps are all one value (nothing to correlate)."""
    out = []
    for j in range(maps.shape[1]):
        a, b = maps[:, j].ravel(), reference[:, j].ravel()
        out.append(np.corrcoef(a, b)[0, 1] if a.std() > 0 and b.std() > 0 else np.nan)
    return np.asarray(out)
