"""Latency of one image through a .tflite model on this machine, and the phone's equivalent.

Timing on a shared CPU is noisy, so results are medians and 90th percentiles over many single
invocations after a warm-up, and models meant to be compared are timed in the same process,
interleaved, by ``tfcxr benchmark``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from tfcxr.runs.tflite import TFLiteModel


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p90_ms: float
    runs: int
    threads: int | None

    def to_dict(self) -> dict:
        return asdict(self)


def time_invocations(model: TFLiteModel, runs: int) -> list[float]:
    """Seconds per ``invoke`` of one fixed mid-grey image, ``runs`` times."""
    image = np.full((1, *model.input_shape), 128, np.float32)
    model.interpreter.set_tensor(model.inputs[0]["index"], model._quantize_input(image))  # noqa: SLF001
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        model.interpreter.invoke()
        timings.append(time.perf_counter() - start)
    return timings


def summarize(timings: list[float], threads: int | None) -> Latency:
    ms = np.asarray(timings) * 1000
    return Latency(float(np.median(ms)), float(np.percentile(ms, 90)), len(ms), threads)


def measure_latency(model: TFLiteModel, runs: int = 50, warmup: int = 5,
                    threads: int | None = None) -> Latency:
    time_invocations(model, warmup)
    return summarize(time_invocations(model, runs), threads)


def adb_benchmark_command(tflite_name: str, threads: int = 4) -> str:
    """The same measurement on an Android phone with TFLite's ``benchmark_model`` tool."""
    device_path = f"/data/local/tmp/{tflite_name}"
    return (f"adb push {tflite_name} {device_path} && adb shell /data/local/tmp/benchmark_model "
            f"--graph={device_path} --num_threads={threads} --use_xnnpack=true --num_runs=100")
