"""Two real worker processes on localhost (TF_CONFIG, MultiWorkerMirroredStrategy on the CPU):
the Distiller's weights equal a single-process run over the same global batches, and a run
killed mid-epoch resumes from its backup under the strategy."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("multi_worker_worker.py")
REPO = Path(__file__).resolve().parents[2]
TOTAL_STEPS = 12  # 6 per epoch, 2 epochs


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def launch(out: Path, data: str, workers: int, kill_at: int | None = None) -> list[int]:
    """Run the workers to the end; their exit codes."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "CUDA_VISIBLE_DEVICES": ""}
    ports = free_ports(workers)
    processes = []
    for index in range(workers):
        worker_env = dict(env)
        if workers > 1:
            worker_env["TF_CONFIG"] = json.dumps({
                "cluster": {"worker": [f"localhost:{p}" for p in ports]},
                "task": {"type": "worker", "index": index}})
        command = [sys.executable, str(WORKER), str(out), data]
        if kill_at is not None:
            command += ["--kill-at", str(kill_at)]
        processes.append(subprocess.Popen(command, env=worker_env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
    codes = []
    for p in processes:
        output, _ = p.communicate(timeout=240)
        codes.append(p.returncode)
        if p.returncode not in (0, 3):
            pytest.fail(f"worker exited with {p.returncode}:\n{output[-3000:]}")
    return codes


def weights(out: Path, task: int = 0) -> list[np.ndarray]:
    with np.load(out / f"weights-{task}.npz") as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


def assert_same(a, b, atol=1e-5):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)


@pytest.mark.slow
def test_two_workers_equal_one_process_and_resume_after_a_kill(tmp_path):
    launch(tmp_path / "single", "varied", workers=1)
    launch(tmp_path / "two", "varied", workers=2)
    single = weights(tmp_path / "single")
    assert_same(weights(tmp_path / "two", 0), single)
    assert_same(weights(tmp_path / "two", 1), single)  # the replicas agree

    # Killed after global step 10 (mid-epoch 2, right after a backup), then rerun as is.
    launch(tmp_path / "single-rep", "repeated", workers=1)
    resumed = tmp_path / "resumed"
    assert launch(resumed, "repeated", workers=2, kill_at=10) == [3, 3]
    assert not (resumed / "weights-0.npz").exists() and (resumed / "backup").is_dir()
    launch(resumed, "repeated", workers=2)
    assert int((resumed / "steps-0.txt").read_text()) == TOTAL_STEPS - 10  # it did resume
    assert_same(weights(resumed, 0), weights(tmp_path / "single-rep"))
    assert not any((resumed / "backup").rglob("*.index"))  # the backup goes when the run ends
