"""What the strategy scripts (one device against MirroredStrategy, one process against two
workers) train: a tiny CNN teacher and student, and a fixed dataset whose rows are masked with
very different densities, so that the replicas' shares of a batch count different numbers of
labels (a per-replica mean divided by the replica count would then be off). The scripts run as
subprocesses that configure TensorFlow first; they import this after doing so."""

import numpy as np

from tfcxr.backend import keras, tf

CLASSES = 5


def tiny_cnn(seed: int, size: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((size, size, 3)),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(CLASSES),
    ])


def unevenly_masked(steps: int, batch: int, size: int) -> tuple[np.ndarray, ...]:
    """(images, masked labels, mask) for ``steps`` batches of ``batch``: the first half of every
    batch has 20 % of its labels counted, the second half 90 %."""
    rng = np.random.default_rng(0)
    n = steps * batch
    images = rng.normal(size=(n, size, size, 3)).astype("float32")
    labels = (rng.random((n, CLASSES)) < 0.4).astype("float32")
    density = np.where(np.arange(n) % batch < batch // 2, 0.2, 0.9)[:, None]
    mask = (rng.random((n, CLASSES)) < density).astype("float32")
    return images, labels * mask, mask


def batched(arrays, batch: int) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(tuple(arrays)).batch(batch)
