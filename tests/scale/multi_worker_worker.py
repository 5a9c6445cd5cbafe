"""One training process for the multi-worker test: the Distiller on a fixed tiny dataset, under
MultiWorkerMirroredStrategy when TF_CONFIG is set (else one device), with a mid-epoch backup.

    python multi_worker_worker.py OUT {varied|repeated} [--kill-at STEP]

Writes OUT/weights-<task>.npz (the student's weights) and OUT/steps-<task>.txt (the training
steps this process ran). ``--kill-at`` ends the process right after global step STEP (counted
from 1), as a preempted worker would be; rerunning the same command resumes from the backup.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from tfcxr.backend import keras, tf
from tfcxr.distill import Distiller

STEPS, GLOBAL_BATCH, CLASSES, EPOCHS = 6, 8, 5, 2


def tiny_cnn(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((16, 16, 3)),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(CLASSES),
    ])


def dataset(kind: str) -> tf.data.Dataset:
    rng = np.random.default_rng(0)
    n = STEPS * GLOBAL_BATCH
    images = rng.normal(size=(n, 16, 16, 3)).astype("float32")
    labels = (rng.random((n, CLASSES)) < 0.4).astype("float32")
    # Unevenly masked halves: each worker's share of a batch counts different numbers of labels.
    density = np.where(np.arange(n) % GLOBAL_BATCH < GLOBAL_BATCH // 2, 0.2, 0.9)[:, None]
    mask = (rng.random((n, CLASSES)) < density).astype("float32")
    if kind == "repeated":  # every step the same batch: a resumed epoch sees the same data
        images, labels, mask = (np.tile(a[:GLOBAL_BATCH], (STEPS,) + (1,) * (a.ndim - 1))
                                for a in (images, labels, mask))
    return tf.data.Dataset.from_tensor_slices((images, labels * mask, mask)).batch(GLOBAL_BATCH)


class Count(keras.callbacks.Callback):
    def __init__(self, kill_at):
        super().__init__()
        self.kill_at, self.steps = kill_at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        step = int(self.model.optimizer.iterations.numpy())
        if self.kill_at is not None and step == self.kill_at:
            os._exit(3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("data", choices=["varied", "repeated"])
    parser.add_argument("--kill-at", type=int)
    args = parser.parse_args()
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = cluster.get("task", {}).get("index", 0)
    strategy = (tf.distribute.MultiWorkerMirroredStrategy() if cluster
                else tf.distribute.get_strategy())
    with strategy.scope():
        distiller = Distiller(tiny_cnn(1), tiny_cnn(2))
        distiller.compile(keras.optimizers.Adam(1e-2), alpha=0.5, temperature=2.0)
    count = Count(args.kill_at)
    backup = keras.callbacks.BackupAndRestore(str(args.out / "backup"), save_freq=2)
    distiller.fit(dataset(args.data), epochs=EPOCHS, callbacks=[backup, count], verbose=0)
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / f"weights-{task}.npz", *distiller.student.get_weights())
    (args.out / f"steps-{task}.txt").write_text(str(count.steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
