import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tfcxr.backend import keras, tf
from tfcxr.distill import Distiller
from tfcxr.metrics import AUCCallback, per_label_auc

NAMES = ["Effusion", "Pleural Effusion", "Hernia"]


def test_known_case():
    labels = np.array([[0, 1], [0, 0], [1, 1], [1, 0]])
    probs = np.array([[0.1, 0.9], [0.4, 0.2], [0.35, 0.6], [0.8, 0.7]])
    result = per_label_auc(labels, probs, None, ["a", "b"])
    assert list(result) == ["auc", "auc_a", "auc_b"]
    assert result["auc_a"] == 0.75  # the classic sklearn example
    assert result["auc_b"] == 0.75
    assert result["auc"] == 0.75


def test_matches_sklearn_over_unmasked_rows():
    rng = np.random.default_rng(0)
    labels = (rng.random((200, 3)) < 0.3).astype(np.float32)
    probs = rng.random((200, 3))
    mask = (rng.random((200, 3)) < 0.6).astype(np.float32)
    result = per_label_auc(labels, probs, mask, NAMES)
    for j, name in enumerate(NAMES):
        keep = mask[:, j] == 1
        expected = roc_auc_score(labels[keep, j], probs[keep, j])
        assert result[f"auc_{name}"] == pytest.approx(expected)
    # Masked rows may hold anything: they do not count.
    scrambled = np.where(mask == 1, probs, 1 - labels)
    assert per_label_auc(labels, scrambled, mask, NAMES) == pytest.approx(result)
    assert per_label_auc(labels, probs, None, NAMES)["auc"] != pytest.approx(result["auc"])


def test_single_class_labels_are_nan_and_left_out_of_the_mean():
    labels = np.array([[0, 1, 1], [1, 1, 0], [0, 1, 1], [1, 1, 0]])
    probs = np.array([[0.2, 0.5, 0.3], [0.7, 0.5, 0.9], [0.1, 0.5, 0.2], [0.9, 0.5, 0.8]])
    mask = np.array([[1, 1, 1], [1, 1, 0], [1, 1, 1], [1, 1, 0]])  # Hernia: only positives left
    result = per_label_auc(labels, probs, mask, NAMES)
    assert result["auc_Effusion"] == 1.0
    assert math.isnan(result["auc_Pleural Effusion"]) and math.isnan(result["auc_Hernia"])
    assert result["auc"] == 1.0
    assert math.isnan(per_label_auc(labels, probs, np.zeros_like(mask), NAMES)["auc"])


def test_shape_errors():
    with pytest.raises(ValueError, match="label names"):
        per_label_auc(np.zeros((4, 3)), np.zeros((4, 3)), None, ["a", "b"])
    with pytest.raises(ValueError, match="same"):
        per_label_auc(np.zeros((4, 3)), np.zeros((4, 2)), None, NAMES)


@pytest.mark.parametrize("offline", [False, True])
def test_callback_puts_val_auc_in_the_logs_before_later_callbacks(offline):
    rng = np.random.default_rng(1)
    images = rng.normal(size=(12, 8, 8, 1)).astype(np.float32)
    labels = (rng.random((12, 3)) < 0.5).astype(np.float32)
    mask = np.ones_like(labels)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    x = (images, np.zeros_like(labels)) if offline else images
    data = tf.data.Dataset.from_tensor_slices((x, labels, mask)).batch(5)
    if offline:
        model = Distiller(model)
        model.compile(keras.optimizers.SGD(0.01))
    else:
        # A per-label [B, C] loss, so Keras accepts the [B, C] mask as sample weight.
        model.compile(keras.optimizers.SGD(0.01),
                      loss=lambda y, z: keras.backend.binary_crossentropy(y, z, from_logits=True))

    seen = {}
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.update(logs))
    history = model.fit(data, epochs=1, verbose=0, callbacks=[AUCCallback(data, NAMES), record])

    network = model.student if offline else model
    expected = per_label_auc(labels, network.predict(images, verbose=0), mask, NAMES)
    for key, value in expected.items():
        assert seen[f"val_{key}"] == pytest.approx(value)
        assert history.history[f"val_{key}"][0] == pytest.approx(value)
