"""A fair race: training throughput of EEEA-Net-C2 in tfcxr against the same network in PyTorch.

Same CPU, threads, batch, resolution, loss (BCE with logits over 14 labels) and optimiser (Adam);
random images, repeated, so neither side pays for input. tfcxr trains as it always does, a
student-only ``Distiller`` under ``fit``; PyTorch runs the reference network the porting tests
check the Keras port against (``tests/models/torch_reference_ofa.py``), in a plain loop.

    python benchmarks/pytorch_race.py [--image-size 224] [--batch-size 32] [--steps 10] [--json F]

Rows: tfcxr float32 (graph), tfcxr with XLA (``jit_compile``), tfcxr mixed_bfloat16 (with and
without XLA), tfcxr mixed_float16 (a GPU setting: on a CPU it only shows that it runs), PyTorch
float32 in NCHW and in channels_last, and PyTorch bfloat16 autocast. The ratio is PyTorch's
best float32 time over tfcxr's best float32 time: above 1, tfcxr is faster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from tfcxr import models
from tfcxr.backend import keras, start_devices, tf
from tfcxr.distill import Distiller
from tfcxr.models.ofa_mobilenet import EEEA_NET_C2
from tfcxr.models.precision import precision_policy

REPO = Path(__file__).resolve().parents[1]
CLASSES = 14
# the rows --float32-only keeps: the ratio's, without XLA and the reduced precisions
FLOAT32_ROWS = {"tfcxr float32", "PyTorch float32 (NCHW)", "PyTorch float32, channels_last"}


def tfcxr_rate(size, batch, steps, precision="float32", jit_compile=False) -> float:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, size, size, 3)).astype("float32")
    y = (rng.random((batch, CLASSES)) < 0.3).astype("float32")
    data = tf.data.Dataset.from_tensors((x, y, np.ones_like(y))).repeat()
    with precision_policy(precision):
        model = models.create("eeea_net_c2", num_classes=CLASSES, input_shape=(size, size, 3))
        distiller = Distiller(model)
        distiller.compile(keras.optimizers.Adam(1e-3), student_loss_fn="bce", alpha=1.0,
                          jit_compile=jit_compile)
        distiller.fit(data, steps_per_epoch=3, epochs=1, verbose=0)  # trace, compile, warm up
        start = time.perf_counter()
        distiller.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - start)


def torch_rate(size, batch, steps, channels_last=False, bfloat16=False) -> float:
    import torch

    sys.path.insert(0, str(REPO / "tests" / "models"))
    from torch_reference_ofa import MobileNetV3

    torch.manual_seed(0)
    model = MobileNetV3(EEEA_NET_C2, num_classes=CLASSES).train()
    x = torch.randn(batch, 3, size, size)
    y = (torch.rand(batch, CLASSES) < 0.3).float()
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step():
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            logits = model(x)
        loss_fn(logits.float(), y).backward()
        optimiser.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per row")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", type=Path)
    parser.add_argument("--float32-only", action="store_true",
                        help="only the plain float32 rows (tfcxr, PyTorch NCHW and channels_last): "
                             "the ratio, without the XLA and reduced-precision variants, whose "
                             "compilation and emulated bfloat16 take minutes on a CPU")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    devices = start_devices()
    print(f"EEEA-Net-C2, {args.image_size} px, batch {args.batch_size}, {args.threads} threads, "
          f"{args.steps} timed steps; TensorFlow {tf.__version__} on {', '.join(devices)}; "
          f"PyTorch {torch.__version__}\n")
    rows = []
    s, b, n = args.image_size, args.batch_size, args.steps
    candidates = (
        ("tfcxr float32", lambda: tfcxr_rate(s, b, n)),
        ("tfcxr float32, XLA (jit_compile)", lambda: tfcxr_rate(s, b, n, jit_compile=True)),
        ("tfcxr mixed_bfloat16", lambda: tfcxr_rate(s, b, n, "mixed_bfloat16")),
        ("tfcxr mixed_bfloat16, XLA", lambda: tfcxr_rate(s, b, n, "mixed_bfloat16", True)),
        ("tfcxr mixed_float16 (loss scaling)", lambda: tfcxr_rate(s, b, n, "mixed_float16")),
        ("PyTorch float32 (NCHW)", lambda: torch_rate(s, b, n)),
        ("PyTorch float32, channels_last", lambda: torch_rate(s, b, n, channels_last=True)),
        ("PyTorch bfloat16 autocast", lambda: torch_rate(s, b, n, bfloat16=True)),
    )
    for name, fn in candidates:
        if args.float32_only and name not in FLOAT32_ROWS:
            continue
        rate = fn()
        rows.append({"what": name, "films_per_s": rate})
        print(f"{name:<36} {rate:8.1f} films/s", flush=True)
    best = {k: max(r["films_per_s"] for r in rows if r["what"].startswith(k) and
                   "16" not in r["what"]) for k in ("tfcxr", "PyTorch")}
    ratio = best["tfcxr"] / best["PyTorch"]
    print(f"\nfloat32: tfcxr {best['tfcxr']:.1f} vs PyTorch {best['PyTorch']:.1f} films/s: "
          f"ratio {ratio:.2f} (>= 1: tfcxr at least as fast)")
    if args.json:
        args.json.write_text(json.dumps({
            "image_size": s, "batch_size": b, "steps": n, "threads": args.threads,
            "machine": platform.processor() or platform.machine(), "tensorflow": tf.__version__,
            "torch": torch.__version__, "rows": rows, "ratio_float32": ratio}, indent=2) + "\n")


if __name__ == "__main__":
    main()
