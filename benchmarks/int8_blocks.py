"""Where EEEA-Net-C2's int8 time goes, block by block: the model up to the end of each block is
converted (float32, and int8 traced under ``int8_graph`` with h-swish as ops and the kernels whole:
the BNs are not folded, so nothing is split) and all prefixes are timed interleaved in one
process, 1 thread; a block's cost is the difference between its prefix and the one before.
Weights are random with BN statistics set from data, as in ``int8_graph_latency.py``.

    PYTHONPATH=. python benchmarks/int8_blocks.py [--model eeea_net_c2] [--size 224] [--runs 15]
"""
import argparse

import numpy as np

from tfcxr.backend import keras, tf
from tfcxr.export.benchmark import Candidate, benchmark
from tfcxr.export.convert import representative_dataset
from tfcxr.models import create
from tfcxr.models.layers import int8_graph

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="eeea_net_c2")
parser.add_argument("--size", type=int, default=224)
parser.add_argument("--runs", type=int, default=15)
args = parser.parse_args()
rng = np.random.default_rng(0)
shape = (args.size, args.size, 3)
network = create(args.model, num_classes=14, input_shape=shape)
for _ in range(40):
    network(rng.normal(size=(8, *shape)).astype(np.float32), training=True)
names = [layer.name for layer in network.layers]
blocks = sorted({int(n.split(".")[1]) for n in names if n.startswith("blocks.")})
cuts = [[n for n in names if n.startswith(f"blocks.{b}.")][-1] for b in blocks] + ["logits"]
kernels = {b: network.get_layer(f"blocks.{b}.depth_conv.conv").kernel_size[0] for b in blocks}
calibration = rng.normal(size=(8, *shape)).astype(np.float32)


def convert(model, int8):
    @tf.function(input_signature=[tf.TensorSpec((1, *shape), tf.float32)])
    def serve(x):
        return model(x, training=False)

    with int8_graph(int8):
        function = serve.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
    return converter.convert()


found = []
for cut in cuts:
    prefix = keras.Model(network.input, network.get_layer(cut).output)
    found += [Candidate(cut, "prefix", mode, convert(prefix, mode == "int8"), None, None)
              for mode in ("float32", "int8")]
rows = {(r.name, r.mode): r for r in benchmark(found, threads=1, runs=args.runs)}
print(f"{args.model} at {args.size} px, 1 thread, {args.runs} runs: each prefix's median, and the block's share")
print("| up to | depthwise kernel | float32 ms | int8 ms | block float32 ms | block int8 ms | int8 partitions |")
print("|---|---|---|---|---|---|---|")
previous = {"float32": 0.0, "int8": 0.0}
for block, cut in zip([*blocks, None], cuts):
    now = {m: rows[cut, m].latency.median_ms for m in ("float32", "int8")}
    kernel = f"{kernels[block]}x{kernels[block]}" if block is not None else "(head)"
    print(f"| {cut} | {kernel} | {now['float32']:.2f} | {now['int8']:.2f} | "
          f"{now['float32'] - previous['float32']:.2f} | {now['int8'] - previous['int8']:.2f} | "
          f"{rows[cut, 'int8'].delegation['partitions']} |")
    previous = now
