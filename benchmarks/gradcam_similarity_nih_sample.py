"""Does a distilled student look where its teacher looks? Grad-CAM similarity on real films.

The paper claims that knowledge distillation keeps the student's attention on the teacher's
evidence. On the NIH sample (621 real films; the official test list = 75 held-out films,
patient-disjoint from train/val) this script trains, from random weights at 128 px:

* a teacher (DenseNet-121 by default, masked BCE),
* an EEEA-Net-C2 student distilled online from that teacher (alpha 0.5, temperature 2),
* the same student trained alone (masked BCE, ``student_only``), same seed and budget,

then computes standard Grad-CAM maps (``tfcxr.explain.gradcam.grad_cam``: gradient of the label's
logit, ReLU, divided by the map's maximum, resized bilinearly to 128x128) of all three models for
every test film and every label that has at least one positive in the test split, and compares
each student's map with the teacher's map of the same (film, label):

* Pearson: correlation of the two 128x128 maps (pixels as samples). 1 = same relative layout of
  evidence, 0 = unrelated. Undefined (left out, counted) when a map is constant, e.g. all zero
  (no positive evidence for that label on that film).
* IoU top-20%: each map's region at or above its own 80th percentile, intersection over union of
  the two regions. Two independent random regions of 20% of the image give about 0.11; identical
  rankings give 1. (Where more than 20% of a map ties at its 80th percentile, e.g. a map that is
  zero on more than 80% of the image, the region is larger than 20%; the JSON gives the mean
  region size.)

Standard Grad-CAM keeps only positive evidence (the ReLU): a map whose weighted feature sum is
<= 0 everywhere, the usual case for a label the model scores low on a film, is all zero. Such
pairs have no Pearson / IoU and are left out of those means (each cell gives n, the pairs left);
the second table reports how often each model's maps are all zero, and how well each student
agrees with the teacher on which (film, label) maps are all zero (agreement and Cohen's kappa:
0 = chance, 1 = same).

Both similarities are averaged over (film, label) pairs ("all pairs"), and again over the pairs where the film
is positive for the label ("positive pairs", where the explanation is about a real finding).
"shuffled films" pairs each student map with the teacher's map of another film (same label, a
fixed random derangement of the films): the similarity that a generic, film-independent heat
map pattern already gives; a student only "looks where the teacher looks" to the extent it beats
that row. KD vs alone is compared pairwise: per film, the mean over its labels of
(similarity of the KD student - similarity of the alone student); the table gives the mean of
those film differences, a 95% paired bootstrap interval over films, the bootstrap p-value
(two-sided, differences recentred on 0) and a two-sided sign test over films. The test mean ROC-AUC
(``tfcxr.metrics.per_label_auc`` on the logits, labels with a positive in the test split) stands
next to the similarities, so attention agreement reads against accuracy.

Reproduce (a --work directory that already holds the three finished runs is reused, so a rerun
only recomputes the heat maps):

    .venv/bin/python benchmarks/gradcam_similarity_nih_sample.py \\
        --work /tmp/gradcam_bench --json /tmp/gradcam_bench/result.json

Everything trains from random weights on a few hundred films (no downloads): absolute AUCs are far
below the paper's, and with 75 test films the similarity differences carry wide intervals; read
the p-values, not only the means.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from tfcxr.backend import keras, tf  # noqa: F401  (first: selects tf-keras)
from tfcxr.config import DataConfig, DistillConfig, ModelConfig, RunConfig, TrainConfig
from tfcxr.data.pipeline import build_dataset
from tfcxr.runs.layout import run_is_complete, trained_model
from tfcxr.runs.loading import load_model
from tfcxr.runs.training import distill, train_teacher
from tfcxr.explain.gradcam import grad_cam
from tfcxr.metrics import per_label_auc
from tfcxr.preprocessing import PreprocessingSpec

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "nih-sample"
STUDENT = "eeea_net_c2"
MAP_SIZE = 128
TOP_FRACTION = 0.20


def config_for(args) -> RunConfig:
    data = DataConfig(dataset="nih", root=str(args.root), image_size=args.image_size,
                      batch_size=32, cache=True, options={"val_fraction": 0.1},
                      augment={"rotation_degrees": 5, "translation": 0.04, "zoom": 0.08})
    return RunConfig(
        seed=args.seed, data=data,
        teacher=ModelConfig(args.teacher, train=TrainConfig(epochs=args.teacher_epochs,
                                                            learning_rate=1e-3)),
        student=ModelConfig(STUDENT, train=TrainConfig(epochs=args.epochs, learning_rate=2e-3)),
        distill=DistillConfig(alpha=0.5, temperature=2.0))


def ensure_runs(args, config: RunConfig, work: Path) -> dict[str, Path]:
    """Train what ``work`` does not already hold finished; return the three run directories."""
    dirs = {"teacher": work / "teacher",
            "kd": work / f"student-kd-s{args.seed}",
            "alone": work / f"student-alone-s{args.seed}"}
    timings = {}
    jobs = {
        "teacher": lambda: train_teacher(config, dirs["teacher"], verbose=2),
        "kd": lambda: distill(config, dirs["kd"], verbose=2,
                              teacher_model=trained_model(dirs["teacher"])),
        "alone": lambda: distill(config, dirs["alone"], verbose=2, student_only=True),
    }
    for name, job in jobs.items():
        if run_is_complete(dirs[name]):
            print(f"reusing finished run {dirs[name]}", flush=True)
            continue
        start = time.time()
        job()
        timings[name] = round(time.time() - start, 1)
        print(f"trained {name} in {timings[name]} s -> {dirs[name]}", flush=True)
    return dirs


def model_outputs(run_dir: Path, manifest, labels: list[int]) -> dict:
    """Grad-CAM maps [N, L, 128, 128] for ``labels`` (label="all", then picked), logits [N, C]."""
    spec = PreprocessingSpec.load(run_dir / "preprocessing.json")
    ds = build_dataset(manifest, spec, training=False, batch_size=16)
    images = np.concatenate([x.numpy() for x, _, _ in ds])
    model = load_model(trained_model(run_dir))
    start = time.time()
    maps, cam_logits = grad_cam(model, images, label="all", size=MAP_SIZE, return_logits=True)
    cam_seconds = time.time() - start
    logits = model.predict(images, batch_size=16, verbose=0)
    return {"maps": maps[:, labels], "logits": logits, "cam_seconds": round(cam_seconds, 1),
            "cam_vs_predict_max_abs_logit_diff": float(np.abs(cam_logits - logits).max())}


def pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation over the last axis; NaN where either map is constant."""
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def top_region(maps: np.ndarray) -> np.ndarray:
    """Boolean mask of the pixels at or above each map's 80th percentile (last axis = pixels)."""
    cut = np.percentile(maps, 100 * (1 - TOP_FRACTION), axis=-1, keepdims=True)
    return maps >= cut


def iou_top(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of the top-20% regions over the last axis; NaN where either map is constant."""
    ra, rb = top_region(a), top_region(b)
    inter = (ra & rb).sum(-1)
    union = (ra | rb).sum(-1)
    constant = (a.max(-1) == a.min(-1)) | (b.max(-1) == b.min(-1))
    return np.where(constant, np.nan, inter / np.maximum(union, 1))


def similarity(student: np.ndarray, teacher: np.ndarray) -> dict[str, np.ndarray]:
    """Per (film, label) [N, L] similarities of two map stacks [N, L, H, W]."""
    s = student.reshape(*student.shape[:2], -1).astype(np.float64)
    t = teacher.reshape(*teacher.shape[:2], -1).astype(np.float64)
    return {"pearson": pearson(s, t), "iou_top20": iou_top(s, t)}


def summarize(values: np.ndarray, select: np.ndarray) -> dict:
    picked = values[select]
    defined = picked[~np.isnan(picked)]
    return {"mean": float(defined.mean()) if len(defined) else float("nan"),
            "std": float(defined.std(ddof=1)) if len(defined) > 1 else float("nan"),
            "n_pairs": int(len(defined)), "n_undefined": int(np.isnan(picked).sum())}


def paired(kd: np.ndarray, alone: np.ndarray, select: np.ndarray, rng: np.random.Generator,
           draws: int) -> dict:
    """KD - alone over (film, label) pairs defined for both; films are the resampling unit."""
    from scipy.stats import binomtest

    diff = np.where(select, kd - alone, np.nan)  # [N, L]
    pair_diffs = diff[~np.isnan(diff)]
    has = (~np.isnan(diff)).any(1)
    film = np.nanmean(diff[has], axis=1)  # one difference per film: mean over its labels
    n = len(film)
    if n == 0:
        return {"n_films": 0}
    observed = float(film.mean())
    boot = film[rng.integers(0, n, size=(draws, n))].mean(1)
    null = (film - observed)[rng.integers(0, n, size=(draws, n))].mean(1)
    wins, losses = int((film > 0).sum()), int((film < 0).sum())
    sign_p = binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else float("nan")
    return {
        "mean_pair_diff": float(pair_diffs.mean()), "n_pairs": int(len(pair_diffs)),
        "mean_film_diff": observed, "n_films": int(n),
        "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
        # (k + 1) / (draws + 1): never 0 from a finite number of draws
        "bootstrap_p": float(((np.abs(null) >= abs(observed)).sum() + 1) / (draws + 1)),
        "kd_better_films": wins, "alone_better_films": losses, "sign_test_p": float(sign_p),
    }


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation without fixed points: film i is paired with film mate[i] != i."""
    order = rng.permutation(n)
    mate = np.empty(n, int)
    mate[order] = np.roll(order, -1)
    return mate


def fmt(s: dict) -> str:
    return f"{s['mean']:.3f} ± {s['std']:.3f} (n={s['n_pairs']})" if s["n_pairs"] else "n/a (n=0)"


def zero_maps(maps: np.ndarray) -> np.ndarray:
    """[N, L] True where the Grad-CAM map has no positive evidence (all zero)."""
    return maps.reshape(*maps.shape[:2], -1).max(-1) <= 0


def zero_agreement(student: np.ndarray, teacher: np.ndarray, select: np.ndarray) -> dict:
    """How often the two models agree on which maps are all zero, and Cohen's kappa."""
    s, t = student[select], teacher[select]
    observed = float((s == t).mean())
    chance = float(s.mean() * t.mean() + (1 - s.mean()) * (1 - t.mean()))
    kappa = (observed - chance) / (1 - chance) if chance < 1 else float("nan")
    return {"agreement": observed, "chance": chance, "kappa": float(kappa), "n_pairs": int(len(s))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[1:]))
    parser.add_argument("root", nargs="?", type=Path, default=DEFAULT_ROOT,
                        help="NIH sample directory (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of all three runs and of the "
                        "bootstrap / shuffled-film baseline (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=10, help="student epochs")
    parser.add_argument("--teacher", default="densenet121")
    parser.add_argument("--teacher-epochs", type=int, default=12)
    parser.add_argument("--bootstrap", type=int, default=10000, help="bootstrap draws")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep (and reuse) the runs here (default: a new temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    started = time.time()
    work = args.work or Path(tempfile.mkdtemp(prefix="tfcxr-gradcam-bench-"))
    work.mkdir(parents=True, exist_ok=True)

    config = config_for(args)
    dirs = ensure_runs(args, config, work)
    train_done = time.time()

    test = config.data.read_manifest().split("test")
    positives = test.targets * test.mask
    labels = [j for j in range(test.num_classes) if positives[:, j].sum() > 0]
    names = [test.label_names[j] for j in labels]
    counted = test.mask[:, labels] > 0  # [N, L]
    positive = counted & (positives[:, labels] > 0)
    print(f"\ntest: {len(test)} films, {len(labels)} labels with a positive "
          f"({int(positive.sum())} positive (film, label) pairs)", flush=True)

    out = {name: model_outputs(d, test, labels) for name, d in dirs.items()}
    aucs = {name: per_label_auc(test.targets[:, labels], o["logits"][:, labels],
                                test.mask[:, labels], names) for name, o in out.items()}
    rng = np.random.default_rng(args.seed)
    mate = derangement(len(test), rng)
    teacher_maps = out["teacher"]["maps"]
    sims = {name: similarity(out[name]["maps"], teacher_maps) for name in ("kd", "alone")}
    shuffled = {name: similarity(out[name]["maps"], teacher_maps[mate]) for name in ("kd", "alone")}
    between = similarity(out["kd"]["maps"], out["alone"]["maps"])
    subsets = {"all": counted, "positive": positive}
    metrics = ("pearson", "iou_top20")

    def table_row(s):
        return {subset: {m: summarize(s[m], sel) for m in metrics} for subset, sel in subsets.items()}

    rows = {
        "kd": table_row(sims["kd"]), "alone": table_row(sims["alone"]),
        "kd_shuffled": table_row(shuffled["kd"]), "alone_shuffled": table_row(shuffled["alone"]),
        "kd_vs_alone": table_row(between),
    }
    comparison = {subset: {m: paired(sims["kd"][m], sims["alone"][m], sel, rng, args.bootstrap)
                           for m in metrics} for subset, sel in subsets.items()}
    per_label = {name: {m: {lab: summarize(sims[name][m][:, [k]], counted[:, [k]])["mean"]
                            for k, lab in enumerate(names)} for m in metrics}
                 for name in ("kd", "alone")}
    zeros = {name: zero_maps(o["maps"]) for name, o in out.items()}
    zero_stats = {name: {subset: {"fraction_all_zero": float(zeros[name][sel].mean()),
                                  **({} if name == "teacher" else
                                     {"vs_teacher": zero_agreement(zeros[name], zeros["teacher"], sel)})}
                         for subset, sel in subsets.items()} for name in out}
    region = {name: float(top_region(o["maps"].reshape(*o["maps"].shape[:2], -1))
                          .mean(-1)[counted].mean()) for name, o in out.items()}

    t = args.teacher
    print(f"\nGrad-CAM similarity to the {t} teacher, {len(test)} official test films, "
          f"{len(labels)} labels; EEEA-Net-C2 students at {args.image_size} px, seed {args.seed}; "
          f"mean ± std over (film, label) pairs\n")
    print("| model | test mean AUC | Pearson, all pairs | IoU top-20%, all pairs "
          "| Pearson, positive pairs | IoU top-20%, positive pairs |")
    print("|---|---|---|---|---|---|")
    label_of = {"teacher": f"{t} teacher", "kd": "student, distilled (KD)",
                "alone": "student, alone", "kd_shuffled": "KD student, shuffled films (baseline)",
                "alone_shuffled": "alone student, shuffled films (baseline)",
                "kd_vs_alone": "KD student vs alone student (not vs teacher)"}
    print(f"| {label_of['teacher']} | {aucs['teacher']['auc']:.4f} | 1 | 1 | 1 | 1 |")
    for key, row in rows.items():
        auc = f"{aucs[key]['auc']:.4f}" if key in aucs else "—"
        print(f"| {label_of[key]} | {auc} | {fmt(row['all']['pearson'])} | "
              f"{fmt(row['all']['iou_top20'])} | {fmt(row['positive']['pearson'])} | "
              f"{fmt(row['positive']['iou_top20'])} |")
    print("\nKD − alone, paired over films (per film: mean over its labels of the difference)\n")
    print("| pairs | metric | mean diff over pairs | mean diff over films | 95% bootstrap CI "
          "| bootstrap p | films KD better / worse | sign test p |")
    print("|---|---|---|---|---|---|---|---|")
    for subset, by_metric in comparison.items():
        for m, c in by_metric.items():
            if not c["n_films"]:
                continue
            print(f"| {subset} ({c['n_pairs']} pairs, {c['n_films']} films) | {m} | "
                  f"{c['mean_pair_diff']:+.4f} | {c['mean_film_diff']:+.4f} | "
                  f"[{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}] | {c['bootstrap_p']:.2g} | "
                  f"{c['kd_better_films']} / {c['alone_better_films']} | {c['sign_test_p']:.2g} |")
    print("\nAll-zero Grad-CAM maps (no positive evidence) and agreement with the teacher on which "
          "maps are all zero\n")
    print("| model | all-zero maps, all pairs | all-zero maps, positive pairs "
          "| same zero/non-zero as teacher, all pairs (κ) | same, positive pairs (κ) |")
    print("|---|---|---|---|---|")
    for name, z in zero_stats.items():
        agree = [f"{z[k]['vs_teacher']['agreement']:.3f} (κ {z[k]['vs_teacher']['kappa']:+.3f})"
                 if "vs_teacher" in z[k] else "—" for k in subsets]
        print(f"| {label_of[name]} | {z['all']['fraction_all_zero']:.3f} | "
              f"{z['positive']['fraction_all_zero']:.3f} | {agree[0]} | {agree[1]} |")
    undefined = {k: rows[k]["all"]["pearson"]["n_undefined"] for k in ("kd", "alone")}
    print(f"\nundefined pairs (constant map, left out): {undefined}; mean top-20% region size: "
          + ", ".join(f"{k} {v:.3f}" for k, v in region.items())
          + "; Grad-CAM logits vs predict, max |diff|: "
          + ", ".join(f"{k} {o['cam_vs_predict_max_abs_logit_diff']:.2e}" for k, o in out.items()))
    wall = time.time() - started
    print(f"wall time {wall:.0f} s (training {train_done - started:.0f} s, "
          f"heat maps + statistics {time.time() - train_done:.0f} s)")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "args": {k: str(v) for k, v in vars(args).items()},
            "runs": {k: str(v) for k, v in dirs.items()},
            "n_films": len(test), "labels": names, "n_positive_pairs": int(positive.sum()),
            "test_auc": aucs, "similarity_to_teacher": rows, "kd_minus_alone": comparison,
            "per_label_mean": per_label, "all_zero_maps": zero_stats, "mean_top20_region_fraction": region,
            "gradcam_seconds": {k: o["cam_seconds"] for k, o in out.items()},
            "cam_vs_predict_max_abs_logit_diff":
                {k: o["cam_vs_predict_max_abs_logit_diff"] for k, o in out.items()},
            "wall_s": round(wall, 1), "train_s": round(train_done - started, 1),
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
