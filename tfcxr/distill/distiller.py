"""The Distiller: the keras-io knowledge-distillation model, for multi-label chest X-rays.

``L = alpha * hard + (1 - alpha) * soft``, where ``hard`` is a masked hard-label loss of the
student against the labels and ``soft = T^2 * distillation_loss(student, teacher, T)``
(paper.md section 2). ``soft_loss`` is reported with its T^2 factor, as in the keras-io example.

One class covers three modes, chosen per batch from its structure and the teacher:

- online: a teacher model is given and batches are ``(images, labels, mask)``; the teacher runs
  frozen (``trainable=False``, ``training=False``, behind ``stop_gradient``).
- offline: batches are ``((images, teacher_logits), labels, mask)``; the teacher's logits come
  precomputed with the data and no teacher model is needed. When a teacher model is also given,
  the logits in the batch win and the teacher is not run.
- student-only: no teacher and plain batches; ``L = hard`` (alpha is taken as 1 whatever was
  compiled) and ``soft_loss`` is reported as 0, so every mode logs the same columns.

Under ``tf.distribute`` each replica sees a slice of the global batch and the optimizer sums the
replicas' gradients. A replica's hard term is therefore weighted by its share of the global
batch's unmasked cells and its soft term by its share of the global batch's images (both counts
come from one all-reduce). Their sum over replicas is exactly the single-device loss of the whole
batch, "the mean over its unmasked cells" included, however unevenly the mask falls across
replicas; a plain division by the number of replicas would be exact only for evenly masked
slices. This assumes a custom ``student_loss_fn`` is, like the built-ins, a mean over unmasked
cells and a custom ``distillation_loss_fn`` a mean over images. BatchNormalization still
normalises with per-replica batch statistics, as it does in any Keras model.

Under a mixed precision policy the student (and teacher) compute in float16 or bfloat16 but
their ``logits`` layers output float32, so the losses are float32. Under ``mixed_float16``
``compile`` wraps the optimizer in a ``LossScaleOptimizer``; ``train_step`` then scales the loss
before differentiating and unscales the gradients, so small float16 gradients do not flush to 0.
"""

from __future__ import annotations

import functools

from tfcxr.backend import keras, tf
from tfcxr.distill.losses import get_hard_loss, get_soft_loss, masked_focal_bce
from tfcxr.errors import ConfigError


class Distiller(keras.Model):
    """Trains ``student`` on hard labels and, when there is one, a frozen teacher's soft outputs.

    ``call`` returns the student's logits, for images or ``(images, teacher_logits)``, so
    ``predict``, ``evaluate`` and callbacks see a plain multi-label logits model. Save
    ``distiller.student``, not the Distiller.
    """

    def __init__(self, student: keras.Model, teacher: keras.Model | None = None, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.trainable = False
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.hard_loss_tracker = keras.metrics.Mean(name="hard_loss")
        self.soft_loss_tracker = keras.metrics.Mean(name="soft_loss")
        self._loss_trackers = (self.loss_tracker, self.hard_loss_tracker, self.soft_loss_tracker)

    def compile(self, optimizer="adam", metrics=None, student_loss_fn="bce",
                distillation_loss_fn="binary_kl", alpha: float = 0.5, temperature: float = 2.0,
                focal_gamma: float = 2.0, **kwargs):
        """Configure training.

        student_loss_fn: ``"bce"``, ``"focal"`` or ``fn(labels, logits, mask) -> scalar``.
        distillation_loss_fn: ``"binary_kl"``, ``"soft_bce"``, ``"logit_mse"``, ``"softmax_mse"``
            or ``fn(student_logits, teacher_logits, temperature) -> scalar`` (without T^2).
        metrics: Keras metrics, updated on ``sigmoid(student logits)`` with the mask as sample
            weight (e.g. ``keras.metrics.AUC(multi_label=True)``).
        focal_gamma: the focusing parameter when ``student_loss_fn="focal"``.
        """
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1], got {alpha}")
        if temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}")
        # As weighted metrics, because tf-keras ignores the sample weight (the mask) otherwise.
        super().compile(optimizer=optimizer, weighted_metrics=list(metrics or []), **kwargs)
        if isinstance(student_loss_fn, str):
            student_loss_fn = get_hard_loss(student_loss_fn)
            if student_loss_fn is masked_focal_bce:
                student_loss_fn = functools.partial(masked_focal_bce, gamma=focal_gamma)
        if isinstance(distillation_loss_fn, str):
            distillation_loss_fn = get_soft_loss(distillation_loss_fn)
        self.student_loss_fn = student_loss_fn
        self.distillation_loss_fn = distillation_loss_fn
        self.alpha = float(alpha)
        self.temperature = float(temperature)

    @property
    def metrics(self):
        # Listed explicitly so that fit resets them every epoch and History gets their keys.
        compiled = self.compiled_metrics.metrics if self.compiled_metrics is not None else []
        return [*self._loss_trackers, *compiled]

    def call(self, inputs, training=False):
        images = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
        return self.student(images, training=training)

    def train_step(self, data):
        x, labels, mask = _unpack(data)
        with tf.GradientTape() as tape:
            student_logits = self.student(_images(x), training=True)
            loss, reported, images = self._compute_losses(x, labels, mask, student_logits)
            scaled = (self.optimizer.get_scaled_loss(loss) if _scales_loss(self.optimizer)
                      else loss)
        variables = self.student.trainable_variables
        gradients = tape.gradient(scaled, variables)
        if _scales_loss(self.optimizer):
            gradients = self.optimizer.get_unscaled_gradients(gradients)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._update_metrics(reported, images, labels, mask, student_logits)

    def test_step(self, data):
        x, labels, mask = _unpack(data)
        student_logits = self.student(_images(x), training=False)
        _, reported, images = self._compute_losses(x, labels, mask, student_logits)
        return self._update_metrics(reported, images, labels, mask, student_logits)

    def _teacher_logits(self, x):
        if isinstance(x, (tuple, list)):
            return tf.stop_gradient(x[1])
        if self.teacher is not None:
            return tf.stop_gradient(self.teacher(x, training=False))
        return None

    def _compute_losses(self, x, labels, mask, student_logits):
        """This replica's share of the loss (to differentiate), the global batch's loss, hard and
        soft terms (to report; the same on every replica) and the global batch's image count."""
        dtype = student_logits.dtype
        labels = tf.cast(labels, dtype)
        mask = tf.ones_like(labels) if mask is None else tf.cast(mask, dtype)
        teacher_logits = self._teacher_logits(x)

        hard = self.student_loss_fn(labels, student_logits, mask)
        if teacher_logits is None:
            alpha, soft = 1.0, tf.zeros((), dtype)
        else:
            alpha = self.alpha
            soft = self.temperature ** 2 * self.distillation_loss_fn(
                student_logits, tf.cast(teacher_logits, dtype), self.temperature)

        cells, images = tf.reduce_sum(mask), tf.cast(tf.shape(labels)[0], dtype)
        totals = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, tf.stop_gradient(tf.stack([hard * cells, soft * images,
                                                                   cells, images])))
        hard_sum, soft_sum, all_cells, all_images = tf.unstack(totals)
        share = (alpha * hard * tf.math.divide_no_nan(cells, all_cells)
                 + (1.0 - alpha) * soft * tf.math.divide_no_nan(images, all_images))
        global_hard = tf.math.divide_no_nan(hard_sum, all_cells)
        global_soft = tf.math.divide_no_nan(soft_sum, all_images)
        global_loss = alpha * global_hard + (1.0 - alpha) * global_soft
        if self.student.losses:  # regularisers: the same on every replica, so split evenly
            regularization = tf.add_n(self.student.losses)
            share += regularization / tf.distribute.get_strategy().num_replicas_in_sync
            global_loss += regularization
        reported = {"loss": global_loss, "hard_loss": global_hard, "soft_loss": global_soft}
        return share, reported, all_images

    def _update_metrics(self, reported, images, labels, mask, student_logits):
        # Weighted by batch size, as Keras weights its loss. Every replica adds the same global
        # values, so the Mean's sums over replicas divide out.
        for tracker in self._loss_trackers:
            tracker.update_state(reported[tracker.name], sample_weight=images)
        self.compiled_metrics.update_state(labels, tf.sigmoid(student_logits), sample_weight=mask)
        return self.get_metrics_result()


def _scales_loss(optimizer) -> bool:
    """A LossScaleOptimizer (which ``compile`` wraps around the optimizer under mixed_float16)."""
    return isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)


def _unpack(data):
    """``(x, labels, mask)``; a batch without a mask counts every label."""
    x, labels, mask = keras.utils.unpack_x_y_sample_weight(data)
    if labels is None:
        raise ValueError("Distiller batches need labels: (images, labels, mask) or "
                         "((images, teacher_logits), labels, mask)")
    return x, labels, mask


def _images(x):
    return x[0] if isinstance(x, (tuple, list)) else x
