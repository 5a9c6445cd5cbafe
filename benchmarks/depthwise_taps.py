"""XNNPACK's depthwise convolution by kernel size, float32 and int8, 1 thread, timed interleaved in
one process: its fast kernels cover up to 25 taps (5x5); from 6x6 it is ~10x slower per tap,
which is why int8 traces split larger kernels (``tfcxr.models.layers.split_depthwise_conv2d``).

    PYTHONPATH=. python benchmarks/depthwise_taps.py [--size 28] [--channels 240] [--runs 50]
"""
import argparse

import numpy as np

from tfcxr.backend import keras, tf
from tfcxr.export.benchmark import Candidate, benchmark

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--size", type=int, default=28)
parser.add_argument("--channels", type=int, default=240)
parser.add_argument("--kernels", default="3,4,5,6,7,8")
parser.add_argument("--runs", type=int, default=50)
args = parser.parse_args()
shape = (args.size, args.size, args.channels)
rng = np.random.default_rng(0)


def convert(model, int8):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.normal(size=(1, *shape)).astype(np.float32)] for _ in range(8))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


kernels = [int(k) for k in args.kernels.split(",")]
found = []
for kernel in kernels:
    inputs = keras.Input(shape)
    model = keras.Model(inputs, keras.layers.DepthwiseConv2D(kernel, padding="same")(inputs))
    found += [Candidate(f"{kernel}x{kernel}", "layer", mode, convert(model, mode == "int8"), None, None)
              for mode in ("float32", "int8")]
rows = {(r.name, r.mode): r for r in benchmark(found, threads=1, runs=args.runs)}
assert all(r.delegation["outside"] == {} for r in rows.values()), "XNNPACK must take every layer"
print(f"depthwise {args.size}x{args.size}x{args.channels}, same padding, 1 thread, XNNPACK")
print("| kernel | taps | float32 ms | int8 ms | float32 ns per tap and output |")
print("|---|---|---|---|---|")
for kernel in kernels:
    f32, i8 = (rows[f"{kernel}x{kernel}", m].latency.median_ms for m in ("float32", "int8"))
    per_tap = f32 * 1e6 / (kernel * kernel * args.size * args.size * args.channels)
    print(f"| {kernel}x{kernel} | {kernel * kernel} | {f32:.3f} | {i8:.3f} | {per_tap:.3f} |")
