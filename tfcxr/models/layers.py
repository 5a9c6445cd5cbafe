"""The custom layers of the MobileNetV3 family: h-swish, h-sigmoid and squeeze-excite.

They are real ``keras.layers.Layer`` subclasses, not ``Lambda`` layers or ``TFOpLambda`` ops,
because tfmot can only quantize layers it can annotate (``x + 3.0`` inside a Lambda breaks
``quantize_model``) and because registered layers reload with ``keras.models.load_model``
without ``custom_objects``. Their formulas are those of OFA / darmo (PyTorch), so ported
weights give the same numbers: note that tf-keras's own ``hard_sigmoid`` is ``clip(0.2x + 0.5)``,
a different function.
"""

from __future__ import annotations

import contextlib
import contextvars
import math

from tfcxr.backend import keras, tf

_HARD_SWISH_AS_OPS = contextvars.ContextVar("tfcxr_hard_swish_as_ops", default=False)
# XNNPACK's fast depthwise kernels take up to 5x5 taps; from 6x6 it falls to a path 7-16x slower
# per tap (1 thread, this x86 CPU, 28x28x240, int8: 5x5 0.27 ms, 6x6 6.5 ms, 7x7 8.6 ms;
# benchmarks/depthwise_taps.py).
FAST_DEPTHWISE_TAPS = 25


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
    """x * relu6(x + 3) / 6.

    Traced under ``int8_graph(hard_swish_as_ops=True)`` it is written ``(x * 1/6) * relu6(x + 3)``:
    the TFLite converter fuses the usual form into one HARD_SWISH op, which XNNPACK runs in float
    only, so every h-swish of an int8 file splits XNNPACK's graph (EEEA-Net-C2: 28 partitions,
    27 HARD_SWISH outside); the ADD (RELU6 fused), MUL, MUL of this form it runs in int8. It
    rounds more, though (three requantised tensors where HARD_SWISH has one): the exporter keeps
    it only where the parity gate holds. Float files keep HARD_SWISH, one op where this is three."""
    if _HARD_SWISH_AS_OPS.get():
        return (x * (1.0 / 6.0)) * tf.nn.relu6(x + 3.0)
    return x * hard_sigmoid(x)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``same`` padding (before, after) of one spatial axis."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def split_depthwise_conv2d(x, kernel, strides, padding: str):
    """``depthwise_conv2d(x, kernel)`` as a sum of depthwise convolutions of at most
    ``FAST_DEPTHWISE_TAPS`` taps each: the kernel's columns in groups (a 7x7 kernel as 7x3, 7x3,
    7x1), each over the columns of the padded input it reads. The same sum in another order."""
    rows, cols = int(kernel.shape[0]), int(kernel.shape[1])
    if padding.lower() == "same":
        x = tf.pad(x, [[0, 0], _same_padding(int(x.shape[1]), rows, strides[0]),
                       _same_padding(int(x.shape[2]), cols, strides[1]), [0, 0]])
    out_cols = (int(x.shape[2]) - cols) // strides[1] + 1
    group = max(1, FAST_DEPTHWISE_TAPS // rows)
    pieces = []
    for first in range(0, cols, group):
        width = min(group, cols - first)
        window = x[:, :, first:first + (out_cols - 1) * strides[1] + width, :]
        pieces.append(tf.nn.depthwise_conv2d(window, kernel[:, first:first + width],
                                             [1, *strides, 1], "VALID"))
    total = pieces[0]
    for piece in pieces[1:]:  # ADDs: XNNPACK runs ADD in int8, not ADD_N
        total = total + piece
    return total


_keras_depthwise_call = keras.layers.DepthwiseConv2D.call


def _pads_past_the_edge(layer, shape) -> bool:
    """Whether ``same`` padding would pad an axis by as much as its size: XNNPACK refuses such a
    PAD (2x2 and 3x3 maps padded by 3: "failed to prepare", and in a whole model a crash)."""
    if layer.padding.lower() != "same":
        return False
    return any(max(_same_padding(int(size), kernel, stride)) >= int(size)
               for size, kernel, stride in zip(shape[1:3], layer.kernel_size, layer.strides))


def _split_depthwise_call(layer, inputs):
    """``keras.layers.DepthwiseConv2D.call`` with ``split_depthwise_conv2d`` for kernels of more
    than ``FAST_DEPTHWISE_TAPS`` taps that carry their own bias (undilated, channels last); other
    layers unchanged. A depthwise layer without bias is one a BatchNormalization follows, which
    the converter folds into a single convolution but not into a sum of them: the sum before
    BatchNormalization would be quantised per tensor, whose per-channel scales then amplify the
    rounding of the small channels, so such a layer is split only once ``fold_batch_norms`` has
    folded its BN in."""
    rows, cols = layer.kernel_size
    if (rows * cols <= FAST_DEPTHWISE_TAPS or not layer.use_bias
            or tuple(layer.dilation_rate) != (1, 1) or _pads_past_the_edge(layer, inputs.shape)
            or layer.data_format != "channels_last" or layer.depth_multiplier != 1):
        return _keras_depthwise_call(layer, inputs)
    outputs = split_depthwise_conv2d(inputs, layer.depthwise_kernel, layer.strides, layer.padding)
    if layer.use_bias:
        outputs = tf.nn.bias_add(outputs, layer.bias)
    return outputs if layer.activation is None else layer.activation(outputs)


@contextlib.contextmanager
def int8_graph(enabled: bool = True, *, hard_swish_as_ops: bool = True,
               split_depthwise: bool = True):
    """While ``enabled``, trace models the way XNNPACK runs them in int8: with ``split_depthwise``
    every Keras ``DepthwiseConv2D`` of more than ``FAST_DEPTHWISE_TAPS`` taps as ``split_depthwise_conv2d``
    (EEEA-Net-C2 has five 7x7 ones), and with ``hard_swish_as_ops`` h-swish as ADD/RELU6/MUL (see
    ``hard_swish``). EEEA-Net-C2's int8 file at 224 px, 1 thread: 28.3 ms as the converter writes
    it, 15.1 ms with the kernels split, 8.3 ms with h-swish as ops too; float32 20.3 ms
    (``benchmarks/int8_graph_latency.py``). The same functions
    either way, equal to rounding. QAT wrappers call their layer's ``call``, so a QAT model gets
    the h-swish form too; its depthwise layers, whose BNs ``tfcxr qat`` leaves unfolded, stay
    whole (README: folding before QAT cost the NIH-sample QAT file its gate)."""
    if not enabled:
        yield
        return
    token = _HARD_SWISH_AS_OPS.set(hard_swish_as_ops)
    if split_depthwise:
        keras.layers.DepthwiseConv2D.call = _split_depthwise_call
    try:
        yield
    finally:
        keras.layers.DepthwiseConv2D.call = _keras_depthwise_call
        _HARD_SWISH_AS_OPS.reset(token)


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

    ``observe_gate`` is an identity applied to the gate (after its h-sigmoid): the point where
    QAT's QuantizeConfig puts its fake-quant of the layer's inner tensor
    (``tfcxr.quantize.configs``, which says why the squeezed vector has none).
    """

    def __init__(self, reduction: int = 4, divisor: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.reduction = reduction
        self.divisor = divisor
        self.observe_gate = keras.activations.linear

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
        return inputs * self.observe_gate(hard_sigmoid(y))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction, "divisor": self.divisor}
