"""Multi-label distillation losses: every label is an independent sigmoid (paper.md section 2).

Hard-label terms ``fn(labels, logits, mask)`` compare the student with the ground truth and return
the mean over the unmasked (image, label) cells of a [B, C] ``mask`` (1: the label counts; 0: an
uncertain or missing label). A batch with no unmasked cell gives 0, not NaN: it carries no
information, so it must not move the weights, and one such batch must not poison an epoch's mean.

Distillation terms ``fn(student_logits, teacher_logits, temperature)`` compare the student with the
teacher over every label, masked or not (the teacher has an opinion on uncertain labels too), and
return the mean over all B x C cells, without the T^2 factor: the Distiller applies it, so that
the gradient magnitude stays comparable across temperatures (Hinton et al., 2015).

Everything is computed from logits through ``log_sigmoid``, never ``log(sigmoid(z))``, so logits
of +-30 and beyond give finite values and finite gradients. Means of empty batches are 0.
"""

from __future__ import annotations

from tfcxr.backend import tf
from tfcxr.errors import ConfigError


def masked_bce(labels, logits, mask):
    """Binary cross-entropy from logits, averaged over the unmasked cells."""
    logits = tf.convert_to_tensor(logits)
    labels = tf.cast(labels, logits.dtype)
    return _masked_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits),
                        mask)


def masked_focal_bce(labels, logits, mask, gamma: float = 2.0):
    """Focal BCE, ``-(1-p)^g * y * log p - p^g * (1-y) * log(1-p)``, averaged over unmasked cells.

    ``p^g`` is taken as ``exp(g * log p)``, so its gradient stays finite for any ``g >= 0`` even
    where ``p`` underflows to 0. ``gamma=0`` is plain BCE.
    """
    logits = tf.convert_to_tensor(logits)
    labels = tf.cast(labels, logits.dtype)
    log_p, log_not_p = tf.math.log_sigmoid(logits), tf.math.log_sigmoid(-logits)
    cells = -(tf.exp(gamma * log_not_p) * labels * log_p
              + tf.exp(gamma * log_p) * (1.0 - labels) * log_not_p)
    return _masked_mean(cells, mask)


def binary_kl(student_logits, teacher_logits, temperature):
    """Per-label Bernoulli ``KL(p_t || p_s)`` with ``p = sigmoid(z / T)``: the default.

    Zero exactly when the student matches the teacher, unlike ``soft_bce``, which bottoms out at
    the teacher's entropy.
    """
    s, t = _scaled(student_logits, teacher_logits, temperature)
    p_t = tf.sigmoid(t)
    cells = (p_t * (tf.math.log_sigmoid(t) - tf.math.log_sigmoid(s))
             + (1.0 - p_t) * (tf.math.log_sigmoid(-t) - tf.math.log_sigmoid(-s)))
    return _mean(cells)


def soft_bce(student_logits, teacher_logits, temperature):
    """BCE of ``sigmoid(z_s / T)`` against the soft targets ``sigmoid(z_t / T)``.

    Same gradient as ``binary_kl``; its value is higher by the teacher's entropy.
    """
    s, t = _scaled(student_logits, teacher_logits, temperature)
    return _mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.sigmoid(t), logits=s))


def logit_mse(student_logits, teacher_logits, temperature):
    """Mean squared error between the raw logits. ``temperature`` is ignored (it is accepted for a
    uniform signature): matching logits needs no softening, and the Distiller's T^2 still scales it.
    """
    student_logits = tf.convert_to_tensor(student_logits)
    teacher_logits = tf.cast(teacher_logits, student_logits.dtype)
    return _mean(tf.square(student_logits - teacher_logits))


def softmax_mse(student_logits, teacher_logits, temperature):
    """MSE between ``softmax(z / T)`` over the classes: the loss of the paper's only public
    re-implementation (paper.md section 2.1), kept for fidelity. A softmax across labels treats
    them as mutually exclusive, which multi-label findings are not; prefer ``binary_kl``.
    """
    s, t = _scaled(student_logits, teacher_logits, temperature)
    return _mean(tf.square(tf.nn.softmax(s, axis=-1) - tf.nn.softmax(t, axis=-1)))


HARD_LOSSES = {"bce": masked_bce, "focal": masked_focal_bce}
SOFT_LOSSES = {"binary_kl": binary_kl, "soft_bce": soft_bce, "logit_mse": logit_mse,
               "softmax_mse": softmax_mse}


def get_hard_loss(name: str):
    """The hard-label loss registered as ``name`` (``HARD_LOSSES``)."""
    return _lookup(HARD_LOSSES, name, "hard-label loss")


def get_soft_loss(name: str):
    """The distillation loss registered as ``name`` (``SOFT_LOSSES``)."""
    return _lookup(SOFT_LOSSES, name, "distillation loss")


def _lookup(registry: dict, name: str, what: str):
    if name not in registry:
        raise ConfigError(f"unknown {what} {name!r}; choose one of {', '.join(registry)}")
    return registry[name]


def _scaled(student_logits, teacher_logits, temperature):
    student_logits = tf.convert_to_tensor(student_logits)
    teacher_logits = tf.cast(teacher_logits, student_logits.dtype)
    return student_logits / temperature, teacher_logits / temperature


def _masked_mean(cells, mask):
    mask = tf.cast(mask, cells.dtype)
    return tf.math.divide_no_nan(tf.reduce_sum(cells * mask), tf.reduce_sum(mask))


def _mean(cells):
    return tf.math.divide_no_nan(tf.reduce_sum(cells), tf.cast(tf.size(cells), cells.dtype))
