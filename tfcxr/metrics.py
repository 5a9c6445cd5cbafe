"""Per-label ROC-AUC, the headline metric of multi-label CXR classification (paper.md section 2.2).

``per_label_auc`` returns a flat dict, ``{"auc": mean, "auc_<label>": ...}``, in label order: the
shape Keras logs, CSV files and JSON reports take without conversion. A label whose unmasked rows
hold only one class (common for rare findings in a small validation split), or whose scores are
not finite (a diverged model), has no defined AUC: it is NaN and left out of the mean, which is
itself NaN when no label has an AUC.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from tfcxr.backend import keras, tf


def sigmoid(logits) -> np.ndarray:
    """Probabilities of logits (float64, so no saturation before 1 - 1e-16)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))


def per_label_auc(labels, probs, mask, label_names) -> dict[str, float]:
    """ROC-AUC of each label over its unmasked rows, and their unweighted mean.

    labels, probs, mask: [N, C]; ``mask`` 1 where the label counts (None: every label counts).
    Probabilities or logits give the same AUC (it depends only on the ranking).
    """
    labels, probs = np.asarray(labels), np.asarray(probs)
    mask = np.ones(labels.shape) if mask is None else np.asarray(mask)
    names = list(label_names)
    if not labels.shape == probs.shape == mask.shape or labels.ndim != 2:
        raise ValueError(f"labels {labels.shape}, probs {probs.shape} and mask {mask.shape} "
                         "must be the same [N, C] shape")
    if len(names) != labels.shape[1]:
        raise ValueError(f"{len(names)} label names for {labels.shape[1]} label columns")
    aucs = {}
    for j, name in enumerate(names):
        counted = mask[:, j] > 0
        y, score = labels[counted, j], probs[counted, j]
        defined = len(np.unique(y)) == 2 and np.isfinite(score).all()
        aucs[f"auc_{name}"] = float(roc_auc_score(y, score)) if defined else float("nan")
    values = np.array(list(aucs.values()))
    defined = values[~np.isnan(values)]
    return {"auc": float(defined.mean()) if len(defined) else float("nan"), **aucs}


class AUCCallback(keras.callbacks.Callback):
    """Adds ``val_auc`` and ``val_auc_<label>`` to the epoch logs.

    At each epoch end, predicts ``validation_data`` (batches ``(x, labels, mask)``, ``x`` images
    or ``(images, teacher_logits)``) with ``self.model``: a Distiller (whose ``call`` gives the
    student's logits) or any logits model. Callbacks share one logs dict in list order, so put
    this one BEFORE those that read ``val_auc`` (ModelCheckpoint(monitor="val_auc", mode="max"),
    EarlyStopping, CSVLogger, TensorBoard); History and the progress bar always come last.
    """

    def __init__(self, validation_data: tf.data.Dataset, label_names, prefix: str = "val_"):
        super().__init__()
        self.validation_data = validation_data
        self.label_names = list(label_names)
        self.prefix = prefix

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        labels, probs, masks = [], [], []
        # One pass, predicting batch by batch: labels stay aligned with predictions even when
        # the dataset reshuffles on every iteration.
        for batch in self.validation_data:
            x, y, mask = keras.utils.unpack_x_y_sample_weight(batch)
            logits = self.model.predict_on_batch(x)
            probs.append(tf.sigmoid(logits).numpy())
            labels.append(np.asarray(y))
            masks.append(np.ones_like(labels[-1]) if mask is None else np.asarray(mask))
        aucs = per_label_auc(np.concatenate(labels), np.concatenate(probs),
                             np.concatenate(masks), self.label_names)
        logs.update({self.prefix + key: value for key, value in aucs.items()})
