"""Train the same Distiller on one device and under MirroredStrategy on two logical CPUs; print
the largest differences as JSON. Run as a script: logical devices must be configured before
TensorFlow initialises its devices, which importing tfcxr.backend does."""

import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)

from tfcxr.backend import keras  # noqa: E402
from tfcxr.distill import Distiller  # noqa: E402

STEPS, BATCH, CLASSES = 4, 8, 5


def tiny_cnn(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(CLASSES),
    ])


def dataset() -> tf.data.Dataset:
    rng = np.random.default_rng(0)
    n = STEPS * BATCH
    images = rng.normal(size=(n, 32, 32, 3)).astype("float32")
    labels = (rng.random((n, CLASSES)) < 0.4).astype("float32")
    # Rows masked with very different densities, so the replicas' halves of a batch hold
    # different numbers of counted labels: a per-replica mean divided by 2 would be off.
    density = np.where(np.arange(n) % BATCH < BATCH // 2, 0.2, 0.9)[:, None]
    mask = (rng.random((n, CLASSES)) < density).astype("float32")
    return tf.data.Dataset.from_tensor_slices((images, labels * mask, mask)).batch(BATCH)


def train(strategy: tf.distribute.Strategy):
    with strategy.scope():
        distiller = Distiller(tiny_cnn(1), tiny_cnn(2))
        distiller.compile(keras.optimizers.SGD(0.5), alpha=0.5, temperature=2.0)
    history = distiller.fit(dataset(), validation_data=dataset(), epochs=2, verbose=0)
    return distiller.student.get_weights(), history.history


def main():
    single_weights, single_history = train(tf.distribute.get_strategy())
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored_weights, mirrored_history = train(mirrored)
    moved = max(float(np.max(np.abs(w - w0)))
                for w, w0 in zip(single_weights, tiny_cnn(1).get_weights()))
    print(json.dumps({
        "replicas": mirrored.num_replicas_in_sync,
        "max_weight_diff": max(float(np.max(np.abs(a - b)))
                               for a, b in zip(single_weights, mirrored_weights)),
        "max_weight_change": moved,
        "max_history_diff": {key: float(np.max(np.abs(np.subtract(values, mirrored_history[key]))))
                             for key, values in single_history.items()},
        "single_history": single_history,
    }))


if __name__ == "__main__":
    sys.exit(main())
