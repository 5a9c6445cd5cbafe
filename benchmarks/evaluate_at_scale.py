"""Peak memory and speed of ``tfcxr evaluate`` on NIH's full official test split (25,596 films).

The NIH sample has 621 films but the full official split lists (86,524 train_val + 25,596 test
names). This script builds an NIH-format dataset at run time in a temporary folder (never
committed): a ``Data_Entry_2017_v2020.csv`` row for every name of the lists and an ``images/`` file
for each name that is a HARD LINK to one of the sample's films (no pixel data is copied; 112k
links cost a few MB of directory entries). A name that is itself in the sample links to its own
film; every other name links to sample film ``i mod 621`` in list order and takes that film's
findings, view, age and sex, while its patient id and follow-up number come from its own name, so
the reader's patient-wise validation split works as on the real dataset. Hard links need the work
folder on the sample's filesystem; when it is not, symbolic links are made instead and the JSON
says so (``"links"``).

Each size ``n`` (default 2,560 and 25,596 test films) is a second fixture whose test list holds the
first ``n`` test names (train_val stays complete), so only the number of scored films changes.

It needs a model trained at 224 px and makes one itself, so the script runs from a clean clone:
``tfcxr distill --student-only`` for 1 epoch on the sample at 224 px (the scores are meaningless;
memory and speed do not depend on them), then ``tfcxr export-tflite --mode float32`` of it.
Then, for each size and for the Keras run and the float32 .tflite alike, one subprocess

    tfcxr evaluate --model MODEL --run RUN --dataset nih --root FIXTURE --split test --bootstrap 10

whose peak resident memory is measured twice: by polling the RSS of the process and its children
with psutil (every 0.1 s) and by the kernel's ``ru_maxrss`` of the child (``os.wait4``). A command
whose RSS passes ``--rss-limit-gb`` is killed (so a non-streaming scorer cannot push a shared
machine into swap) and reported as such. films/s is the marginal rate between the two sizes,
``(n2 - n1) / (t2 - t1)``, which cancels start-up, model loading and the report; the total
wall time of each command is reported too.

    flock /tmp/tfcxr-cpu.lock .venv/bin/python benchmarks/evaluate_at_scale.py --json scale.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "nih-sample"
CSV_NAME = "Data_Entry_2017_v2020.csv"
GIB = 2 ** 30
ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "TF_CPP_MIN_LOG_LEVEL": "2"}


def build_fixture(sample: Path, out: Path, n_test: int | None) -> dict:
    """An NIH-format folder at ``out`` (see the module docstring); returns what it made."""
    train_val = (sample / "train_val_list.txt").read_text().split()
    test = (sample / "test_list.txt").read_text().split()[:n_test]
    with (sample / CSV_NAME).open(newline="") as f:
        reader = csv.DictReader(f)
        columns, rows = reader.fieldnames, list(reader)
    by_name = {row["Image Index"]: row for row in rows}
    films = sorted(by_name)
    (out / "images").mkdir(parents=True)
    hard = os.stat(sample / "images").st_dev == os.stat(out).st_dev
    link = os.link if hard else os.symlink
    with (out / CSV_NAME).open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        for i, name in enumerate(train_val + test):
            source = by_name.get(name) or by_name[films[i % len(films)]]
            patient, follow_up = name.removesuffix(".png").split("_")
            writer.writerow({**source, "Image Index": name, "Patient ID": str(int(patient)),
                             "Follow-up #": str(int(follow_up))})
            link(sample / "images" / source["Image Index"], out / "images" / name)
    (out / "train_val_list.txt").write_text("\n".join(train_val) + "\n")
    (out / "test_list.txt").write_text("\n".join(test) + "\n")
    return {"root": str(out), "test_films": len(test), "train_val_films": len(train_val),
            "links": "hard" if hard else "symbolic (work folder on another filesystem)"}


def tfcxr(*args: str) -> list[str]:
    return [sys.executable, "-m", "tfcxr.cli", *args]


def run_checked(command: list[str], log: Path) -> None:
    print("$", " ".join(command), flush=True)
    with log.open("w") as f:
        result = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, env=ENV)
    if result.returncode:
        sys.exit(f"failed ({result.returncode}): {' '.join(command)}\n{log.read_text()[-3000:]}")


def measure(command: list[str], log: Path, limit_bytes: int) -> dict:
    """Run ``command``; its wall time, exit code and peak RSS (polled tree and ru_maxrss)."""
    print("$", " ".join(command), flush=True)
    peak = {"bytes": 0, "killed": False}
    with log.open("w") as f:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, env=ENV)
        done = threading.Event()

        def poll():
            process = psutil.Process(child.pid)
            while not done.is_set():
                try:
                    tree = [process, *process.children(recursive=True)]
                    rss = sum(p.memory_info().rss for p in tree)
                except psutil.Error:
                    break
                peak["bytes"] = max(peak["bytes"], rss)
                if rss > limit_bytes and not peak["killed"]:
                    peak["killed"] = True
                    os.kill(child.pid, signal.SIGKILL)
                done.wait(0.1)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        done.set()
        watcher.join()
    return {"command": " ".join(command), "exit_code": child.returncode, "wall_s": round(wall, 1),
            "peak_rss_polled_gib": round(peak["bytes"] / GIB, 3),
            "peak_rss_maxrss_gib": round(usage.ru_maxrss * 1024 / GIB, 3),  # Linux: KiB
            "killed_over_limit": peak["killed"], "log_tail": log.read_text()[-400:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="The NIH sample.")
    parser.add_argument("--work", type=Path, default=None,
                        help="Work folder, kept (the trained run and export are reused on a "
                             "second call); default: a temporary one, removed at the end.")
    parser.add_argument("--sizes", type=int, nargs=2, default=[2560, 25596],
                        help="Test films of the small and the large fixture.")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--rss-limit-gb", type=float, default=6.0,
                        help="Kill an evaluate whose resident memory passes this (GiB).")
    parser.add_argument("--no-tflite", action="store_true", help="Only the Keras run.")
    parser.add_argument("--json", type=Path, default=None, help="Write the results here too.")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="tfcxr-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = benchmark(args, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    print(table(result))


def benchmark(args, work: Path) -> dict:
    fixtures = {}
    for n in args.sizes:
        start = time.perf_counter()
        shutil.rmtree(work / f"nih-{n}", ignore_errors=True)  # a kept --work folder: rebuild
        fixtures[n] = build_fixture(args.root, work / f"nih-{n}", n)
        fixtures[n]["build_s"] = round(time.perf_counter() - start, 1)
        print(f"fixture: {fixtures[n]}", flush=True)

    run = work / "run"
    if not (run / "last.keras").is_file():
        run_checked(tfcxr("distill", "--student-only", "-c", "nih", "--root",
                          str(args.root), "--image-size", str(args.image_size), "--epochs", "1",
                          "--batch-size", "32", "-q", "--out", str(run)), work / "distill.log")
    models = {"keras": str(run)}
    if not args.no_tflite:
        tflite = work / "export" / "student_float32.tflite"
        if not tflite.is_file():
            run_checked(tfcxr("export-tflite", "--run", str(run), "--mode", "float32",
                              "--out", str(tflite)), work / "export.log")
        models["tflite float32"] = str(tflite)

    limit = int(args.rss_limit_gb * GIB)
    rows = []
    for kind, model in models.items():
        for n, fixture in fixtures.items():
            slug = f"{kind.replace(' ', '-')}-{n}"
            row = measure(tfcxr("evaluate", "--model", model, "--run", str(run), "--dataset",
                                "nih", "--root", fixture["root"], "--split", "test",
                                "--bootstrap", "10", "--report", str(work / "reports" / slug)),
                          work / f"{slug}.log", limit)
            rows.append({"model": kind, "films": fixture["test_films"], **row})
            print(json.dumps(rows[-1]), flush=True)
    for kind in models:
        small, large = (r for r in rows if r["model"] == kind)
        ok = not (small["exit_code"] or large["exit_code"]) and large["wall_s"] > small["wall_s"]
        rate = (large["films"] - small["films"]) / (large["wall_s"] - small["wall_s"]) if ok else None
        large["films_per_s_marginal"] = None if rate is None else round(rate, 1)
    return {"image_size": args.image_size, "rss_limit_gib": args.rss_limit_gb,
            "fixtures": list(fixtures.values()), "machine": f"{os.cpu_count()} CPUs, "
            f"{psutil.virtual_memory().total / GIB:.0f} GiB", "results": rows}


def table(result: dict) -> str:
    lines = ["| model | films | exit | wall s | peak RSS GiB (polled / ru_maxrss) | films/s (marginal) |",
             "|---|---|---|---|---|---|"]
    for r in result["results"]:
        status = "killed over limit" if r["killed_over_limit"] else str(r["exit_code"])
        rate = r.get("films_per_s_marginal")
        lines.append(f"| {r['model']} | {r['films']:,} | {status} | {r['wall_s']} | "
                     f"{r['peak_rss_polled_gib']} / {r['peak_rss_maxrss_gib']} | "
                     f"{'' if rate is None else rate} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
