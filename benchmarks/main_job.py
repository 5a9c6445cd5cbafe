"""The README's main job, measured as a new user meets it: a fresh clone, an empty cache.

Clones this repository's committed HEAD into a work folder, points ``HOME`` at an empty folder
there (so the demo dataset is generated too, into ``~/.cache/tfcxr``) and runs, timing each:

1. README command 1: ``tfcxr distill --teacher densenet161`` (teacher first, then the student),
   with ``--install`` the whole command as typed: ``python3.11 -m venv .venv && .venv/bin/pip
   install -e .`` first, pip's cache empty too (it lives in ``HOME``);
2. the baseline: ``tfcxr distill --student-only``, the same config, budget and seed;
3. ``tfcxr evaluate`` on the teacher, the distilled student and the baseline (test split,
   patient-level bootstrap 95 % intervals);
4. with ``--follow-ups``, every command of the README's block after the main job ("Then, on its
   output:"), read from the clone's README and run as typed in the clone, each timed; any
   failure stops the benchmark.

    .venv/bin/python benchmarks/main_job.py --install --follow-ups --work /tmp/main-job \
        --json main_job.json

Without ``--install`` the clone runs with this interpreter (its installed dependencies) and the
clone's own code first on the path. Run it on a quiet machine: the wall time is the claim.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAIN_JOB = ["distill", "--teacher", "densenet161"]
BASELINE = ["distill", "--student-only"]
RUN = Path("runs") / "distill-densenet161-eeea_net_c2-demo"
ALONE = Path("runs") / "distill-none-eeea_net_c2-demo"
INSTALL = "python3.11 -m venv .venv && .venv/bin/pip install -e ."
FOLLOW_UPS_AFTER = "Then, on its output:"


def shell(line: str, clone: Path, env: dict, log) -> float:
    """Run one command line with bash in the clone; its wall time in seconds."""
    print(f"$ {line}", file=log, flush=True)
    started = time.perf_counter()
    subprocess.run(["bash", "-c", line], cwd=clone, env=env, check=True, stdout=log,
                   stderr=subprocess.STDOUT)
    return time.perf_counter() - started


def tfcxr(args: list[str], clone: Path, env: dict, log) -> float:
    return shell("tfcxr " + " ".join(args), clone, env, log)


def follow_up_commands(readme: Path) -> list[str]:
    """The README's bash block after the main job, one command line each: variable assignments
    (``RUN=...``) are kept as a prefix of every later line, comments are dropped."""
    text = readme.read_text()
    if FOLLOW_UPS_AFTER not in text:
        raise SystemExit(f"{readme}: no line {FOLLOW_UPS_AFTER!r} before the follow-up commands")
    block = text.split(FOLLOW_UPS_AFTER, 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assignments, commands = [], []
    for line in block.splitlines():
        line = line.split("  #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if "=" in line.split()[0] and len(line.split()) == 1:
            assignments.append(line)
        else:
            commands.append("; ".join([*assignments, line]))
    return commands


def test_auc(report_dir: Path) -> dict:
    report = json.loads((report_dir / "report.json").read_text())
    mean = report["mean_auc"]
    return {"mean_auc": mean["estimate"], "ci95": [mean["low"], mean["high"]],
            "per_label": {row["label"]: row["auc"]["estimate"] for row in report["rows"]},
            "films": report["n_images"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="Empty (or new) work folder.")
    parser.add_argument("--json", type=Path, help="Write the result here too.")
    parser.add_argument("--no-baseline", action="store_true", help="Skip the student-alone run.")
    parser.add_argument("--install", action="store_true",
                        help=f"Time README command 1 whole: `{INSTALL}` first (needs the package "
                             "index), then the main job in that venv.")
    parser.add_argument("--follow-ups", action="store_true",
                        help="Then run the README's follow-up commands on the main job's output.")
    args = parser.parse_args()
    if args.work.exists():
        shutil.rmtree(args.work)
    clone, home = args.work / "tfcxr", args.work / "home"
    home.mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, check=True, capture_output=True,
                            text=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if k != "TFCXR_CACHE"}
    env.update(HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    bin_dir = clone / ".venv" / "bin" if args.install else Path(sys.executable).parent
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    if not args.install:
        env["PYTHONPATH"] = str(clone)
    result = {"commit": commit, "cpus": os.cpu_count(), "commands": {}}
    with open(args.work / "log.txt", "w") as log:
        if args.install:
            result["install_seconds"] = round(shell(INSTALL, clone, env, log), 1)
            result["commands"]["install"] = INSTALL
        result["main_job_seconds"] = round(tfcxr(MAIN_JOB, clone, env, log), 1)
        result["commands"]["main_job"] = "tfcxr " + " ".join(MAIN_JOB)
        if args.install:
            result["command_1_seconds"] = round(result["install_seconds"]
                                                + result["main_job_seconds"], 1)
        runs = {"teacher": RUN / "teacher", "student": RUN}
        if not args.no_baseline:
            result["baseline_seconds"] = round(tfcxr(BASELINE, clone, env, log), 1)
            result["commands"]["baseline"] = "tfcxr " + " ".join(BASELINE)
            runs["alone"] = ALONE
        for name, run in runs.items():
            report = args.work / "reports" / name
            command = ["evaluate", "--model", str(run), "--report", str(report)]
            tfcxr(command, clone, env, log)
            result["commands"][f"evaluate_{name}"] = "tfcxr " + " ".join(command)
            result[name] = test_auc(report)
        if args.follow_ups:
            result["follow_ups"] = [{"command": line, "seconds": round(shell(line, clone, env, log), 1)}
                                    for line in follow_up_commands(clone / "README.md")]
    result["student_minus_teacher"] = result["student"]["mean_auc"] - result["teacher"]["mean_auc"]
    if "alone" in result:
        result["student_minus_alone"] = result["student"]["mean_auc"] - result["alone"]["mean_auc"]
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
