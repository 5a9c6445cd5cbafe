"""Mixed precision and XLA: the Distiller trains under bfloat16, float16 (with loss scaling) and
jit_compile with finite losses, close to the float32 run; models keep float32 logits and come
back to float32 for saving."""

import numpy as np
import pytest

from tfcxr import models
from tfcxr.backend import keras, tf
from tfcxr.distill import Distiller
from tfcxr.models.precision import as_float32, is_mixed, precision_policy

STEPS, BATCH, CLASSES, SIZE = 6, 8, 4, 32


def data():
    rng = np.random.default_rng(0)
    n = STEPS * BATCH
    images = rng.normal(size=(n, SIZE, SIZE, 3)).astype("float32")
    labels = (images[:, :4, :4, 0].reshape(n, -1)[:, :CLASSES] > 0).astype("float32")
    return tf.data.Dataset.from_tensor_slices((images, labels, np.ones_like(labels))).batch(BATCH)


def tiny(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(CLASSES, dtype="float32"),
    ])


def train(precision, jit_compile=False):
    with precision_policy(precision):
        distiller = Distiller(tiny(1), tiny(2))
        distiller.compile(keras.optimizers.Adam(3e-3), alpha=0.5, jit_compile=jit_compile)
        history = distiller.fit(data(), epochs=3, verbose=0).history
    return distiller, history


@pytest.fixture(scope="module")
def float32_run():
    return train("float32")


@pytest.mark.parametrize("precision, jit_compile, tolerance", [
    ("float32", True, 1e-4),        # XLA: the same maths, another kernel order
    ("mixed_bfloat16", False, 0.05),  # 8-bit mantissa activations
    ("mixed_float16", False, 0.02),
])
def test_runs_train_close_to_float32(float32_run, precision, jit_compile, tolerance):
    _, reference = float32_run
    distiller, history = train(precision, jit_compile)
    losses = np.array(history["loss"])
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0]  # it learns
    np.testing.assert_allclose(losses, reference["loss"], rtol=tolerance)
    assert distiller.student.output.dtype == tf.float32
    if precision == "mixed_float16":
        assert isinstance(distiller.optimizer, keras.mixed_precision.LossScaleOptimizer)


def test_registered_student_has_float32_logits_and_saves_as_float32():
    with precision_policy("mixed_bfloat16"):
        model = models.create("eeea_net_c2", num_classes=3, input_shape=(32, 32, 3))
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    assert is_mixed(model) and model.output.dtype == tf.float32
    plain = as_float32(model)
    assert not is_mixed(plain)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    # bfloat16 activations against float32 ones with the same weights: close, not equal.
    np.testing.assert_allclose(model(x), plain(x), atol=0.1)
    assert as_float32(plain) is plain


def test_unknown_precision_is_a_clear_error():
    from tfcxr.config import RunConfig
    from tfcxr.errors import ConfigError

    with pytest.raises(ConfigError, match="precision must be one of"):
        RunConfig(precision="float8")
