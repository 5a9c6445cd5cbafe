"""The int8 graph (``layers.int8_graph``, ``folding.fold_batch_norms``): the same function as the
model, written with ops XNNPACK runs whole in int8, and only while tracing for an int8 file."""

import numpy as np
import pytest

from tfcxr.backend import keras, tf
from tfcxr.models import create
from tfcxr.models.folding import fold_batch_norms, foldable_pairs
from tfcxr.models.layers import (FAST_DEPTHWISE_TAPS, HardSwish, int8_graph, hard_swish,
                                 split_depthwise_conv2d)


@pytest.mark.parametrize("kernel,stride,padding,size", [
    (7, 1, "same", 14), (7, 2, "valid", 17), (7, 2, "same", 15), (6, 1, "same", 9),
    (9, 3, "same", 20), (5, 1, "same", 8)])
def test_split_depthwise_equals_one_convolution(kernel, stride, padding, size):
    rng = np.random.default_rng(kernel + stride)
    x = rng.normal(size=(2, size, size, 5)).astype(np.float32)
    weights = rng.normal(size=(kernel, kernel, 5, 1)).astype(np.float32)
    expected = tf.nn.depthwise_conv2d(x, weights, [1, stride, stride, 1], padding.upper()).numpy()
    got = split_depthwise_conv2d(tf.constant(x), tf.constant(weights), (stride, stride), padding)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, atol=2e-5)


def _ops(fn, *shapes):
    graph = tf.function(fn).get_concrete_function(*(tf.TensorSpec(s) for s in shapes)).graph
    return [op.type for op in graph.get_operations()]


def test_int8_graph_splits_large_kernels_with_a_bias_and_nothing_else():
    layers = {name: keras.layers.DepthwiseConv2D(k, padding="same", use_bias=bias)
              for name, k, bias in (("7x7+bias", 7, True), ("7x7", 7, False), ("5x5+bias", 5, True))}
    for layer in layers.values():
        layer.build((None, 14, 14, 4))
    with int8_graph():
        inside = {name: _ops(layer, (1, 14, 14, 4)).count("DepthwiseConv2dNative")
                  for name, layer in layers.items()}
        # a 2x2 map padded by 3: XNNPACK refuses that PAD, so the kernel stays whole
        small = _ops(layers["7x7+bias"], (1, 2, 2, 4)).count("DepthwiseConv2dNative")
    outside = _ops(layers["7x7+bias"], (1, 14, 14, 4)).count("DepthwiseConv2dNative")
    assert inside == {"7x7+bias": 3, "7x7": 1, "5x5+bias": 1}  # 7x3 + 7x3 + 7x1 taps
    assert small == 1 and outside == 1
    assert FAST_DEPTHWISE_TAPS == 25


def test_int8_graph_is_left_even_when_the_trace_fails():
    original = keras.layers.DepthwiseConv2D.call
    with pytest.raises(ZeroDivisionError):
        with int8_graph():
            assert keras.layers.DepthwiseConv2D.call is not original
            1 / 0
    assert keras.layers.DepthwiseConv2D.call is original
    x = tf.linspace(-8.0, 8.0, 161)
    np.testing.assert_array_equal(hard_swish(x).numpy(), (x * (tf.nn.relu6(x + 3.0) / 6.0)).numpy())


def test_hard_swish_in_the_int8_graph_is_the_same_function_in_other_ops():
    x = tf.linspace(-8.0, 8.0, 1601)
    with int8_graph():
        split = HardSwish()(x).numpy()
        ops = _ops(HardSwish(), (None,))
    np.testing.assert_allclose(split, HardSwish()(x).numpy(), atol=1e-6)
    assert ops.count("Mul") == 2 and "RealDiv" not in ops  # (x * 1/6) * relu6(x + 3)
    assert "RealDiv" in _ops(HardSwish(), (None,))           # x * (relu6(x + 3) / 6): HARD_SWISH


@pytest.fixture(scope="module")
def eeea_with_statistics():
    """EEEA-Net-C2 whose BatchNormalization layers hold non-trivial statistics and affine terms."""
    keras.utils.set_random_seed(1)
    net = create("eeea_net_c2", num_classes=3, input_shape=(64, 64, 3))
    rng = np.random.default_rng(1)
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.2, channels),
                               rng.normal(0, 0.5, channels), rng.uniform(0.2, 2.0, channels)])
    return net, rng.normal(size=(3, 64, 64, 3)).astype(np.float32)


def test_fold_batch_norms_keeps_the_function_and_the_names(eeea_with_statistics):
    net, x = eeea_with_statistics
    pairs = foldable_pairs(net)
    assert len(pairs) == 19  # every MBConv block's depthwise conv and its BN
    assert all(k.endswith("depth_conv.conv") and v.endswith("depth_conv.bn") for k, v in pairs.items())
    before = [w.numpy().copy() for w in net.weights]
    folded = fold_batch_norms(net)
    assert [layer.name for layer in folded.layers] == [layer.name for layer in net.layers]
    assert not any(isinstance(folded.get_layer(bn), keras.layers.BatchNormalization)
                   for bn in pairs.values())
    assert all(folded.get_layer(conv).use_bias for conv in pairs)
    expected = net(x, training=False).numpy()
    np.testing.assert_allclose(folded(x, training=False).numpy(), expected, rtol=1e-4, atol=1e-4)
    with int8_graph():  # folded, the 7x7 kernels are split too: still the same function
        np.testing.assert_allclose(folded(x, training=False).numpy(), expected, rtol=1e-4, atol=1e-4)
    for was, now in zip(before, net.weights):  # the source model is untouched
        np.testing.assert_array_equal(was, now.numpy())


def test_fold_batch_norms_returns_a_model_with_nothing_to_fold_as_it_is():
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, outputs)
    assert foldable_pairs(model) == {} and fold_batch_norms(model) is model
