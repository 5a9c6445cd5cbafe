"""The GPU check script runs on the CPU with a tiny budget, so it cannot rot."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_runs_on_cpu(tmp_path):
    out = tmp_path / "check.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--steps", "2",
         "--image-size", "32", "--batch-size", "4", "--teacher", "eeea_net_c2",
         "--json", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "devices: /device:CPU:0" in result.stdout
    report = json.loads(out.read_text())
    assert report["precision"] == "mixed_bfloat16"  # no GPU: bfloat16
    assert set(report["films_per_s"]) == {
        "pipeline, decoding PNGs", "pipeline, prepared shards", "training teacher eeea_net_c2",
        "distilling eeea_net_c2"}
    assert all(rate > 0 for rate in report["films_per_s"].values())
