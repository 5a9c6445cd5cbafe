import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfcxr.backend import keras, tf
from tfcxr.distill import Distiller, binary_kl, masked_bce
from tfcxr.errors import ConfigError

N, BATCH, CLASSES, SIZE = 16, 8, 3, 32


def tiny_cnn(seed: int) -> keras.Model:
    """Conv-BN-ReLU twice and a logits head: BN gives the teacher state that training=True
    would change, and the student non-trainable weights that must not be optimised."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Conv2D(4, 3, strides=2, use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(CLASSES),
    ])


def twin(model: keras.Model) -> keras.Model:
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(N, SIZE, SIZE, 3)).astype(np.float32)
    mask = (rng.random((N, CLASSES)) < 0.7).astype(np.float32)
    labels = (rng.random((N, CLASSES)) < 0.5).astype(np.float32) * mask
    return images, labels, mask


def batches(images, labels, mask, teacher_logits=None, batch_size=BATCH):
    x = images if teacher_logits is None else (images, teacher_logits)
    return tf.data.Dataset.from_tensor_slices((x, labels, mask)).batch(batch_size)


def fit_one_epoch(distiller, dataset, **compile_kwargs):
    distiller.compile(keras.optimizers.SGD(0.1), **compile_kwargs)
    history = distiller.fit(dataset, epochs=1, verbose=0).history
    return {k: v[0] for k, v in history.items()}, distiller.student.get_weights()


def assert_same_training(a, b):
    (logs_a, weights_a), (logs_b, weights_b) = a, b
    assert logs_a == pytest.approx(logs_b, rel=1e-5, abs=1e-7)
    for wa, wb in zip(weights_a, weights_b):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)


def test_online_fit_trains_the_student_only(data):
    student, teacher = tiny_cnn(1), tiny_cnn(2)
    teacher_before = [w.copy() for w in teacher.get_weights()]  # BN moving stats included
    student_before = [w.numpy().copy() for w in student.trainable_weights]
    distiller = Distiller(student, teacher)
    distiller.compile(keras.optimizers.Adam(1e-2),
                      metrics=[keras.metrics.AUC(multi_label=True, name="auc")])
    history = distiller.fit(batches(*data), validation_data=batches(*data), epochs=2, verbose=2)

    assert not teacher.trainable
    for before, after in zip(teacher_before, teacher.get_weights()):
        assert np.array_equal(before, after)
    for before, after in zip(student_before, student.trainable_weights):
        assert not np.array_equal(before, after.numpy()), after.name
    expected = {"loss", "hard_loss", "soft_loss", "auc"}
    assert set(history.history) == expected | {f"val_{k}" for k in expected}
    assert all(np.isfinite(v).all() for v in history.history.values())


def test_tensorboard_callback_writes_events(data, tmp_path):
    distiller = Distiller(tiny_cnn(1), tiny_cnn(2))
    distiller.compile(keras.optimizers.SGD(0.1))
    distiller.fit(batches(*data), validation_data=batches(*data), epochs=1, verbose=0,
                  callbacks=[keras.callbacks.TensorBoard(str(tmp_path))])
    assert list((tmp_path / "train").glob("events.out.tfevents.*"))
    assert list((tmp_path / "validation").glob("events.out.tfevents.*"))


def test_reported_losses_are_the_formula(data):
    images, labels, mask = data
    student, teacher = tiny_cnn(1), tiny_cnn(2)
    distiller = Distiller(student, teacher)
    distiller.compile(alpha=0.3, temperature=4.0)
    logs = distiller.evaluate(batches(*data, batch_size=N), return_dict=True, verbose=0)

    z_s, z_t = student(images, training=False), teacher(images, training=False)
    hard = float(masked_bce(labels, z_s, mask))
    soft = 16.0 * float(binary_kl(z_s, z_t, 4.0))
    assert logs["hard_loss"] == pytest.approx(hard, rel=1e-5)
    assert logs["soft_loss"] == pytest.approx(soft, rel=1e-5)
    assert logs["loss"] == pytest.approx(0.3 * hard + 0.7 * soft, rel=1e-5)


def test_student_regularisers_count_in_the_loss(data):
    keras.utils.set_random_seed(0)
    student = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(CLASSES, kernel_regularizer=keras.regularizers.L2(1.0))])
    distiller = Distiller(student)
    distiller.compile()
    logs = distiller.evaluate(batches(*data), return_dict=True, verbose=0)
    penalty = float(np.sum(student.layers[-1].kernel.numpy() ** 2))
    assert logs["loss"] == pytest.approx(logs["hard_loss"] + penalty, rel=1e-5)


def test_offline_precomputed_logits_train_like_the_online_teacher(data):
    images, labels, mask = data
    student, teacher = tiny_cnn(1), tiny_cnn(2)
    teacher_logits = teacher.predict(images, verbose=0)
    online = fit_one_epoch(Distiller(twin(student), teacher), batches(*data))
    offline = fit_one_epoch(Distiller(twin(student)), batches(*data, teacher_logits))
    assert online[0]["soft_loss"] > 0
    assert_same_training(online, offline)


def test_student_only_is_hard_loss_alone_and_equals_alpha_one(data):
    student, teacher = tiny_cnn(1), tiny_cnn(2)
    alone = fit_one_epoch(Distiller(twin(student)), batches(*data), alpha=0.5)
    assert alone[0]["soft_loss"] == 0.0
    assert alone[0]["loss"] == pytest.approx(alone[0]["hard_loss"])
    with_teacher = fit_one_epoch(Distiller(twin(student), teacher), batches(*data), alpha=1.0)
    assert with_teacher[0]["soft_loss"] > 0  # reported, but weighted by 1 - alpha = 0
    assert alone[0]["loss"] == pytest.approx(with_teacher[0]["loss"], rel=1e-6)
    for a, b in zip(alone[1], with_teacher[1]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_loss_names_and_callables(data):
    images, labels, mask = data
    student = tiny_cnn(1)
    focal = Distiller(student)
    focal.compile(student_loss_fn="focal", focal_gamma=0.0)
    custom = Distiller(student)
    custom.compile(student_loss_fn=lambda y, z, m: 2.0 * masked_bce(y, z, m))
    plain = Distiller(student)
    plain.compile(student_loss_fn="bce")
    hard = {name: d.evaluate(batches(*data), return_dict=True, verbose=0)["hard_loss"]
            for name, d in (("focal", focal), ("custom", custom), ("bce", plain))}
    assert hard["focal"] == pytest.approx(hard["bce"], rel=1e-6)
    assert hard["custom"] == pytest.approx(2 * hard["bce"], rel=1e-6)
    with pytest.raises(ConfigError, match="alpha"):
        plain.compile(alpha=1.5)
    with pytest.raises(ConfigError, match="binary_kl"):
        plain.compile(distillation_loss_fn="kl")


def test_call_returns_student_logits_for_either_input(data):
    images = data[0]
    student = tiny_cnn(1)
    distiller = Distiller(student, tiny_cnn(2))
    expected = student.predict(images, verbose=0)
    np.testing.assert_allclose(distiller.predict(images, verbose=0), expected, rtol=1e-6)
    fake_teacher = np.zeros((len(images), CLASSES), np.float32)
    np.testing.assert_allclose(distiller.predict((images, fake_teacher), verbose=0), expected,
                               rtol=1e-6)


def test_mirrored_strategy_matches_single_device():
    """Two logical CPUs need configuring before TensorFlow starts: a fresh interpreter."""
    script = Path(__file__).with_name("strategy_check.py")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["max_weight_change"] > 1e-2  # it did train
    assert result["max_weight_diff"] < 1e-6
    assert max(result["max_history_diff"].values()) < 1e-6
