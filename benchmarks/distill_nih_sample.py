"""Does distillation help on real films? Three ways to train the student, same seed and budget.

On the NIH sample (621 real films; official test list = 75 held-out images, patient-disjoint from
train/val), the student (EEEA-Net-C2 from scratch, CPU-sized resolution) is trained

1. alone (the paper's baseline, masked BCE),
2. offline from the real CheXNet teacher's probabilities (``chexnet_teacher_probs.csv``),
3. online from a DenseNet teacher trained here on the same 491 training films,

for each seed, and scored by mean ROC-AUC over the labels with positives in the test split. Also
reports the training throughput (images/s) of online vs offline distillation.

    .venv/bin/python benchmarks/distill_nih_sample.py --seeds 0 1 2 --json distill.json

Everything trains from random weights (no downloads here), on a few hundred films: absolute AUCs
are far below the paper's (trained on 112k films from ImageNet weights); the comparison between
the three rows, at equal budget, is the point.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from tfcxr.config import DataConfig, DistillConfig, ModelConfig, RunConfig, TrainConfig
from tfcxr.data.pipeline import build_dataset
from tfcxr.runs.layout import trained_model
from tfcxr.runs.loading import load_model
from tfcxr.runs.training import distill, train_teacher
from tfcxr.metrics import per_label_auc

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "nih-sample"


def config_for(args, seed: int) -> RunConfig:
    data = DataConfig(dataset="nih", root=str(args.root), image_size=args.image_size,
                      batch_size=32, cache=True, options={"val_fraction": 0.1},
                      augment={"rotation_degrees": 5, "translation": 0.04, "zoom": 0.08})
    return RunConfig(
        seed=seed, data=data,
        teacher=ModelConfig(args.teacher, train=TrainConfig(epochs=args.teacher_epochs,
                                                            learning_rate=1e-3)),
        student=ModelConfig("eeea_net_c2", train=TrainConfig(epochs=args.epochs, learning_rate=2e-3)),
        distill=DistillConfig(alpha=0.5, temperature=2.0))


def test_auc(run_dir: Path, config: RunConfig) -> dict:
    from tfcxr.preprocessing import PreprocessingSpec

    manifest = config.data.read_manifest().split("test")
    model = load_model(trained_model(run_dir))
    spec = PreprocessingSpec.load(run_dir / "preprocessing.json")
    ds = build_dataset(manifest, spec, training=False, batch_size=32)
    logits = model.predict(ds.map(lambda x, y, m: x), verbose=0)
    return per_label_auc(manifest.targets, logits, manifest.mask, manifest.label_names)


def images_per_second(run_dir: Path, train_images: int) -> float:
    info = json.loads((run_dir / "run.json").read_text())
    return info["epochs"] * train_images / info["fit_seconds"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", nargs="?", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--teacher", default="densenet121")
    parser.add_argument("--teacher-epochs", type=int, default=12)
    parser.add_argument("--work", type=Path, default=None, help="Keep runs here (default: a temp dir).")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="tfcxr-distill-bench-"))
    chexnet = args.root / "chexnet_teacher_probs.csv"

    rows = []
    first = config_for(args, args.seeds[0])  # one teacher (first seed) teaches every seed's student
    train_images = int((first.data.read_manifest().splits == "train").sum())
    teacher = train_teacher(first, work / "teacher", verbose=2)
    teacher_auc = test_auc(teacher.run_dir, first)["auc"]
    for seed in args.seeds:
        config = config_for(args, seed)
        runs = {
            "student only": dict(student_only=True),
            "offline, CheXNet probabilities": dict(teacher_predictions=chexnet),
            f"online, {args.teacher} trained here": dict(teacher_model=trained_model(teacher.run_dir)),
        }
        for mode, kwargs in runs.items():
            start = time.time()
            result = distill(config_for(args, seed), work / f"{mode.split(',')[0]}-s{seed}",
                             verbose=2, **kwargs)
            aucs = test_auc(result.run_dir, config)
            rows.append({"seed": seed, "mode": mode, "test_auc": aucs["auc"],
                         "per_label": {k: v for k, v in aucs.items() if k != "auc"},
                         "train_images_per_s": images_per_second(result.run_dir, train_images),
                         "wall_s": round(time.time() - start, 1)})
            print(f"seed {seed} | {mode:40s} | test AUC {aucs['auc']:.4f}", flush=True)

    chexnet_auc = _chexnet_test_auc(config_for(args, args.seeds[0]), chexnet)
    print(f"\n{len(args.seeds)} seed(s), EEEA-Net-C2 at {args.image_size} px, {args.epochs} epochs; "
          f"test = official test-list images ({chexnet_auc['n']} films)")
    print(f"{'mode':42s} {'test mean AUC':>18s} {'train img/s':>12s}")
    for mode in dict.fromkeys(r["mode"] for r in rows):
        picked = [r for r in rows if r["mode"] == mode]
        aucs = np.array([r["test_auc"] for r in picked])
        speed = np.mean([r["train_images_per_s"] for r in picked])
        print(f"{mode:42s} {aucs.mean():.4f} ± {aucs.std(ddof=1) if len(aucs) > 1 else 0:.4f} {speed:12.1f}")
    print(f"reference: {args.teacher} teacher trained here {teacher_auc:.4f}; "
          f"CheXNet (trained on all of ChestX-ray14) {chexnet_auc['auc']:.4f} on the same images")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": rows, "teacher_test_auc": teacher_auc,
                                         "chexnet_test_auc": chexnet_auc},
                                        indent=2) + "\n")


def _chexnet_test_auc(config: RunConfig, chexnet: Path) -> dict:
    from tfcxr.distill.teacher_predictions import align_teacher_logits

    manifest = config.data.read_manifest().split("test")
    logits = align_teacher_logits(manifest, chexnet)
    return {**per_label_auc(manifest.targets, logits, manifest.mask, manifest.label_names),
            "n": len(manifest)}


if __name__ == "__main__":
    main()
