"""The custom layers of the MobileNetV3 family: h-swish, h-sigmoid and squeeze-excite.

They are real ``keras.layers.Layer`` subclasses, not ``Lambda`` layers or ``TFOpLambda`` ops,
because tfmot can only quantize layers it can annotate (``x + 3.0`` inside a Lambda breaks
``quantize_model``) and because registered layers reload with ``keras.models.load_model``
without ``custom_objects``. Their formulas are those of OFA / darmo (PyTorch), so ported
weights give the same numbers: note that tf-keras's own ``hard_sigmoid`` is ``clip(0.2x + 0.5)``,
a different function.
"""

from __future__ import annotations

from tfcxr.backend import keras, tf


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never dropping below 90 % of it.

    The channel rounding of MobileNet / OFA (``ofa.utils.make_divisible``); the SE width of a
    block with ``mid`` channels is ``make_divisible(mid // 4, 8)``.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def hard_sigmoid(x):
    """relu6(x + 3) / 6, the MobileNetV3 gate (not Keras 2's 0.2x + 0.5)."""
    return tf.nn.relu6(x + 3.0) / 6.0


def hard_swish(x):
    """x * relu6(x + 3) / 6."""
    return x * hard_sigmoid(x)


@keras.utils.register_keras_serializable(package="tfcxr")
class HardSigmoid(keras.layers.Layer):
    """Element-wise ``relu6(x + 3) / 6``."""

    def call(self, inputs):
        return hard_sigmoid(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.utils.register_keras_serializable(package="tfcxr")
class HardSwish(keras.layers.Layer):
    """Element-wise ``x * relu6(x + 3) / 6``."""

    def call(self, inputs):
        return hard_swish(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.utils.register_keras_serializable(package="tfcxr")
class SqueezeExcite(keras.layers.Layer):
    """Squeeze-and-excite of OFA's ``SEModule``: ``x * h_sigmoid(expand(relu(reduce(mean_hw(x)))))``.

    ``reduce`` and ``expand`` are 1x1 convolutions with bias; the squeezed width is
    ``make_divisible(channels // reduction, divisor)``. The layer owns its four weights, kernels
    shaped like Conv2D kernels ``(1, 1, in, out)``, so a QuantizeConfig can swap the kernels for
    their fake-quantized versions. They are created kernels first (``reduce_kernel``,
    ``expand_kernel``, ``reduce_bias``, ``expand_bias``): a reloaded QAT wrapper lists the
    quantized kernels before the layer's other weights, and HDF5 restores weights by position.
    """

    def __init__(self, reduction: int = 4, divisor: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.reduction = reduction
        self.divisor = divisor

    def build(self, input_shape):
        channels = int(input_shape[-1])
        squeezed = make_divisible(channels // self.reduction, self.divisor)
        self.reduce_kernel = self.add_weight(
            name="reduce_kernel", shape=(1, 1, channels, squeezed), initializer="he_normal")
        self.expand_kernel = self.add_weight(
            name="expand_kernel", shape=(1, 1, squeezed, channels), initializer="he_normal")
        self.reduce_bias = self.add_weight(name="reduce_bias", shape=(squeezed,), initializer="zeros")
        self.expand_bias = self.add_weight(name="expand_bias", shape=(channels,), initializer="zeros")
        super().build(input_shape)

    @property
    def squeezed_channels(self) -> int:
        return int(self.reduce_kernel.shape[-1])

    def call(self, inputs):
        y = tf.reduce_mean(inputs, axis=(1, 2), keepdims=True)
        y = tf.nn.bias_add(tf.nn.conv2d(y, self.reduce_kernel, strides=1, padding="VALID"),
                           self.reduce_bias)
        y = tf.nn.relu(y)
        y = tf.nn.bias_add(tf.nn.conv2d(y, self.expand_kernel, strides=1, padding="VALID"),
                           self.expand_bias)
        return inputs * hard_sigmoid(y)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction, "divisor": self.divisor}
