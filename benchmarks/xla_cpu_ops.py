"""Why XLA (``jit_compile``) trains EEEA-Net-C2 slower on a CPU: one training step (forward and
backward) of single layers, TensorFlow's graph kernels against the same function XLA-compiled.

XLA's CPU backend lowers a depthwise convolution to a grouped convolution (one group per
channel) with no fast kernel of its own; TensorFlow's graph runs the depthwise kernels of oneDNN
/ Eigen. A 1x1 convolution (a matmul) is the control. On a GPU XLA has cuDNN's kernels for both.

    PYTHONPATH=. python benchmarks/xla_cpu_ops.py [--shape 8,16,16,240] [--runs 20]
"""
import argparse
import time

import numpy as np

from tfcxr.backend import keras, tf

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--shape", default="8,16,16,240", help="input batch, height, width, channels")
parser.add_argument("--runs", type=int, default=20)
args = parser.parse_args()
shape = tuple(int(d) for d in args.shape.split(","))
images = tf.constant(np.random.default_rng(0).normal(size=shape).astype(np.float32))


def step_ms(layer, jit_compile: bool) -> tuple[float, float]:
    """(milliseconds per forward + backward step, seconds of the first call: trace + compile)."""
    @tf.function(jit_compile=jit_compile)
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x) ** 2)
        return tape.gradient(loss, [x, *layer.trainable_variables])

    started = time.perf_counter()
    step(images)
    first = time.perf_counter() - started
    for _ in range(3):
        step(images)
    started = time.perf_counter()
    for _ in range(args.runs):
        step(images)
    return (time.perf_counter() - started) / args.runs * 1000, first


LAYERS = {
    "depthwise 7x7": lambda: keras.layers.DepthwiseConv2D(7, padding="same"),
    "depthwise 3x3": lambda: keras.layers.DepthwiseConv2D(3, padding="same"),
    f"conv 1x1 {shape[-1]}->{shape[-1]}": lambda: keras.layers.Conv2D(shape[-1], 1),
}
print(f"forward + backward on {list(shape)}, {args.runs} steps each")
for name, make in LAYERS.items():
    layer = make()
    layer.build(shape)
    graph, _ = step_ms(layer, False)
    xla, first = step_ms(layer, True)
    print(f"{name:<20} graph {graph:7.2f} ms   XLA {xla:7.2f} ms ({xla / graph:4.1f}x)   "
          f"XLA first call {first:.1f} s")
