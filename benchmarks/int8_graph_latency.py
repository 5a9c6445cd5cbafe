"""Latency at 224 px, 1 thread, of EEEA-Net-C2 and MobileNetV3-Large in every export mode and each
int8 graph the exporter may write (``convert.INT8_GRAPHS``; the last as the converter writes it
unaided), beside keras.applications' MobileNetV3-Large and the DenseNet161 teacher, all timed
interleaved in one process (``tfcxr.export.benchmark``), with XNNPACK's partitions and the ops it left outside.

Weights are random, but every BatchNormalization's statistics are set from data first (40
training-mode passes over 8 random images): with the initial statistics the activations shrink
block by block and int8 ranges are unlike a trained model's. Latency does not depend on the
weights' values, only on the graph and, for int8, on the ranges that decide what XNNPACK takes.

    PYTHONPATH=. python benchmarks/int8_graph_latency.py [--size 224] [--runs 50] [--json out.json]
"""
import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from tfcxr.export.benchmark import benchmark, candidates
from tfcxr.models import create
from tfcxr.preprocessing import PreprocessingSpec

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--size", type=int, default=224)
parser.add_argument("--runs", type=int, default=50)
parser.add_argument("--models", default="eeea_net_c2,mobilenet_v3_large")
parser.add_argument("--json", help="also write the rows here")
args = parser.parse_args()

spec = PreprocessingSpec(image_size=args.size)
rng = np.random.default_rng(0)
found = []
folder = Path(tempfile.mkdtemp(prefix="int8_graph_latency_"))
for index, name in enumerate(args.models.split(",")):
    network = create(name, num_classes=14, input_shape=spec.input_shape)
    images = rng.normal(size=(8, *spec.input_shape)).astype(np.float32)
    for _ in range(40):
        network(images, training=True)
    path = folder / f"{network.name}.keras"  # the benchmark names a model by its file
    network.save(path)
    found += candidates(path, modes=("float32", "float16", "dynamic", "int8"),
                        teacher="densenet161" if index == 0 else None, stock=index == 0)
rows = benchmark(found, threads=1, runs=args.runs)
if args.json:
    Path(args.json).write_text(json.dumps([r.to_dict() for r in rows], indent=2))
float32 = {r.name: r.latency.median_ms for r in rows if r.mode == "float32"}
teacher = next(r.latency.median_ms for r in rows if r.role == "teacher")
print(f"{args.size} px, 1 thread, {args.runs} runs each, interleaved; x teacher: DenseNet161 float32")
print(f"| model | mode | int8 graph | size MB | median ms | p90 ms | x own float32 | x teacher | partitions | outside XNNPACK |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    outside = ", ".join(f"{op} x{n}" for op, n in r.delegation["outside"].items()) or "-"
    print(f"| {r.name} | {r.mode} | {r.int8_graph or '-'} | {r.size_bytes / 1e6:.2f} | "
          f"{r.latency.median_ms:.2f} | {r.latency.p90_ms:.2f} | "
          f"{r.latency.median_ms / float32[r.name]:.2f} | {r.latency.median_ms / teacher:.3f} | "
          f"{r.delegation['partitions']} | {outside} |")
