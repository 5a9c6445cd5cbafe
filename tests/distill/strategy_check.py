"""Train the same Distiller on one device and under MirroredStrategy on two logical CPUs; print
the largest differences as JSON. Run as a script: logical devices must be configured before
TensorFlow initialises its devices, which importing tfcxr.backend does."""

import json
import os
import sys
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for tiny_training
from tfcxr.backend import keras  # noqa: E402
from tfcxr.distill import Distiller  # noqa: E402
from tiny_training import batched, tiny_cnn, unevenly_masked  # noqa: E402

STEPS, BATCH, SIZE = 4, 8, 32


def dataset() -> tf.data.Dataset:
    return batched(unevenly_masked(STEPS, BATCH, SIZE), BATCH)


def train(strategy: tf.distribute.Strategy):
    with strategy.scope():
        distiller = Distiller(tiny_cnn(1, SIZE), tiny_cnn(2, SIZE))
        distiller.compile(keras.optimizers.SGD(0.5), alpha=0.5, temperature=2.0)
    history = distiller.fit(dataset(), validation_data=dataset(), epochs=2, verbose=0)
    return distiller.student.get_weights(), history.history


def main():
    single_weights, single_history = train(tf.distribute.get_strategy())
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored_weights, mirrored_history = train(mirrored)
    moved = max(float(np.max(np.abs(w - w0)))
                for w, w0 in zip(single_weights, tiny_cnn(1, SIZE).get_weights()))
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
