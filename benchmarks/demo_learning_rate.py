"""The demo student's learning rate, measured: distilled and alone, test mean AUC per rate.

The evidence behind ``student.train.learning_rate`` in ``tfcxr/configs/demo.yaml``. Every student
is the demo config's EEEA-Net-C2 (64 px, batch 16, its epochs or ``--epochs``, cosine schedule,
seed 0), trained either from the logits the main job's DenseNet161 teacher wrote
(``RUN/teacher_logits.csv``, the main job's own offline distillation) or alone
(``--student-only``), at each rate given; each is scored on the test split (mean ROC-AUC over
the six findings, and on its own training films, to tell underfitting from overfitting). About
2.5 minutes per student at 25 epochs on 2 CPU cores.

    tfcxr distill --teacher densenet161          # the main job: writes RUN/teacher_logits.csv
    python benchmarks/demo_learning_rate.py --run runs/distill-densenet161-eeea_net_c2-demo \\
        --rates 0.002 0.001 0.0005 --work /tmp/demo-lr --json demo_lr.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from tqdm import tqdm

from tfcxr.config import load_run_config
from tfcxr.metrics import per_label_auc
from tfcxr.runs.predictor import open_predictor
from tfcxr.runs.trained import TrainedRun
from tfcxr.runs.training import TEACHER_LOGITS, distill


def label_aucs(run: Path, split: str) -> dict:
    trained = TrainedRun.open(run)
    films = trained.split(split)
    aucs = per_label_auc(films.targets, open_predictor(trained).probabilities(films), films.mask,
                         trained.label_names)
    return {name.removeprefix("auc_"): round(float(value), 4) for name, value in aucs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True,
                        help="The main job's run directory (holds teacher_logits.csv).")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.002, 0.001, 0.0005])
    parser.add_argument("--work", type=Path, required=True, help="Where the students are written.")
    parser.add_argument("--epochs", type=int, help="Student epochs (default: the run's config).")
    parser.add_argument("--no-alone", action="store_true", help="Only the distilled students.")
    parser.add_argument("--json", type=Path, help="Write the table here too.")
    args = parser.parse_args()
    logits = args.run / TEACHER_LOGITS
    if not logits.is_file():
        parser.error(f"{logits}: not found; run the main job (tfcxr distill --teacher densenet161) first")
    config = load_run_config(args.run / "config.yaml")
    config.student.train.epochs = args.epochs or config.student.train.epochs
    rows = []
    jobs = [(rate, alone) for rate in args.rates for alone in ((False,) if args.no_alone else (False, True))]
    for rate, alone in tqdm(jobs, desc="students", unit="run"):
        config.student.train.learning_rate = rate
        out = args.work / f"{'alone' if alone else 'distilled'}-lr{rate:g}"
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        if alone:
            distill(config, out, student_only=True, verbose=0)
        else:
            distill(config, out, teacher_predictions=logits, verbose=0)
        test, train = label_aucs(out, "test"), label_aucs(out, "train")
        rows.append({"student": "alone" if alone else "distilled", "learning_rate": rate,
                     "seconds": round(time.perf_counter() - started, 1),
                     "test_mean_auc": test.pop("auc"), "train_mean_auc": train["auc"],
                     "test_per_label": test})
    print(f"{'student':<10} {'lr':>7} {'test AUC':>9} {'train AUC':>10} {'seconds':>8}")
    for row in rows:
        print(f"{row['student']:<10} {row['learning_rate']:>7g} {row['test_mean_auc']:>9.4f} "
              f"{row['train_mean_auc']:>10.4f} {row['seconds']:>8.0f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
