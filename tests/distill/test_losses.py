import numpy as np
import pytest

from tfcxr.backend import tf
from tfcxr.distill import losses
from tfcxr.errors import ConfigError

B, C, T = 6, 4, 2.0


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def log_sigmoid(z):
    return -np.logaddexp(0, -z)


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ref_bce(y, z):
    return -(y * log_sigmoid(z) + (1 - y) * log_sigmoid(-z))


def ref_focal(y, z, gamma):
    p = sigmoid(z)
    return -((1 - p) ** gamma * y * log_sigmoid(z) + p ** gamma * (1 - y) * log_sigmoid(-z))


def ref_kl(zs, zt):
    pt, ps = sigmoid(zt / T), sigmoid(zs / T)
    return pt * np.log(pt / ps) + (1 - pt) * np.log((1 - pt) / (1 - ps))


def ref_soft_bce(zs, zt):
    return ref_bce(sigmoid(zt / T), zs / T)


SOFT_REFERENCES = {
    "binary_kl": lambda zs, zt: ref_kl(zs, zt).mean(),
    "soft_bce": lambda zs, zt: ref_soft_bce(zs, zt).mean(),
    "logit_mse": lambda zs, zt: ((zs - zt) ** 2).mean(),
    "softmax_mse": lambda zs, zt: ((softmax(zs / T) - softmax(zt / T)) ** 2).mean(),
}


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    labels = (rng.random((B, C)) < 0.5).astype(np.float64)
    mask = (rng.random((B, C)) < 0.7).astype(np.float64)
    student, teacher = rng.normal(0, 3, (B, C)), rng.normal(0, 3, (B, C))
    return labels, mask, student, teacher


def value(fn, *args, **kwargs):
    return float(fn(*(tf.constant(a) for a in args), **kwargs))


@pytest.mark.parametrize("name, reference", [
    ("bce", ref_bce), ("focal", lambda y, z: ref_focal(y, z, 2.0))])
def test_hard_losses_match_numpy_over_unmasked_cells(batch, name, reference):
    labels, mask, logits, _ = batch
    expected = (reference(labels, logits) * mask).sum() / mask.sum()
    fn = losses.get_hard_loss(name)
    assert value(fn, labels, logits, mask) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 3.0])
def test_focal_gamma(batch, gamma):
    labels, mask, logits, _ = batch
    expected = (ref_focal(labels, logits, gamma) * mask).sum() / mask.sum()
    assert value(losses.masked_focal_bce, labels, logits, mask, gamma=gamma) == pytest.approx(
        expected, rel=1e-6)
    if gamma == 0.0:
        assert expected == pytest.approx(value(losses.masked_bce, labels, logits, mask))


@pytest.mark.parametrize("name", ["bce", "focal"])
def test_masked_cells_do_not_count(batch, name):
    labels, mask, logits, _ = batch
    fn = losses.get_hard_loss(name)
    scrambled_labels = np.where(mask == 1, labels, 1 - labels)
    scrambled_logits = np.where(mask == 1, logits, 1e3)
    assert value(fn, scrambled_labels, scrambled_logits, mask) == pytest.approx(
        value(fn, labels, logits, mask), rel=1e-12)
    assert value(fn, labels, logits, np.zeros((B, C))) == 0.0  # all masked: 0, not NaN


@pytest.mark.parametrize("name", sorted(SOFT_REFERENCES))
def test_soft_losses_match_numpy(batch, name):
    _, _, student, teacher = batch
    expected = SOFT_REFERENCES[name](student, teacher)
    assert value(losses.get_soft_loss(name), student, teacher, temperature=T) == pytest.approx(
        expected, rel=1e-6)


def test_binary_kl_zero_only_at_the_teacher(batch):
    _, _, student, teacher = batch
    assert value(losses.binary_kl, teacher, teacher, temperature=T) == pytest.approx(0, abs=1e-12)
    assert value(losses.binary_kl, student, teacher, temperature=T) > 0


def test_logit_mse_ignores_temperature(batch):
    _, _, student, teacher = batch
    assert value(losses.logit_mse, student, teacher, temperature=1.0) == value(
        losses.logit_mse, student, teacher, temperature=5.0)


EXTREME = np.array([[-30.0, 30.0, -100.0, 100.0], [30.0, -30.0, 0.0, 1e4]], np.float32)


@pytest.mark.parametrize("name", sorted(losses.HARD_LOSSES))
def test_hard_losses_finite_with_finite_gradients_at_extreme_logits(name):
    labels = np.array([[1, 0, 1, 0], [1, 0, 1, 0]], np.float32)
    logits = tf.Variable(EXTREME)
    with tf.GradientTape() as tape:
        loss = losses.get_hard_loss(name)(labels, logits, np.ones_like(labels))
    gradient = tape.gradient(loss, logits).numpy()
    assert np.isfinite(float(loss)) and np.isfinite(gradient).all()
    # The confidently wrong cells (-30 for a positive, +100 for a negative) dominate the loss.
    assert float(loss) > 10


@pytest.mark.parametrize("name", sorted(losses.SOFT_LOSSES))
def test_soft_losses_finite_with_finite_gradients_at_extreme_logits(name):
    student = tf.Variable(EXTREME)
    with tf.GradientTape() as tape:
        loss = losses.get_soft_loss(name)(student, -EXTREME, T)
    gradient = tape.gradient(loss, student).numpy()
    assert np.isfinite(float(loss)) and np.isfinite(gradient).all()


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="bce, focal"):
        losses.get_hard_loss("dice")
    with pytest.raises(ConfigError, match="binary_kl, soft_bce, logit_mse, softmax_mse"):
        losses.get_soft_loss("kl")
