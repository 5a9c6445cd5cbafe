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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for tiny_training
from tfcxr.backend import keras, tf  # noqa: E402
from tfcxr.distill import Distiller  # noqa: E402
from tiny_training import batched, tiny_cnn, unevenly_masked  # noqa: E402

STEPS, GLOBAL_BATCH, SIZE, EPOCHS = 6, 8, 16, 2


def dataset(kind: str) -> tf.data.Dataset:
    arrays = unevenly_masked(STEPS, GLOBAL_BATCH, SIZE)
    if kind == "repeated":  # every step the same batch: a resumed epoch sees the same data
        arrays = (np.tile(a[:GLOBAL_BATCH], (STEPS,) + (1,) * (a.ndim - 1)) for a in arrays)
    return batched(arrays, GLOBAL_BATCH)


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
        distiller = Distiller(tiny_cnn(1, SIZE), tiny_cnn(2, SIZE))
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
