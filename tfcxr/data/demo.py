"""The embedded default dataset: synthetic chest-X-ray-like films in NIH ChestX-ray14 format.

Nothing is downloaded. Each film has a body, two dark lung fields with markings and ribs, a spine,
a heart shadow and diaphragm domes; six findings are drawn the way they look on a real film, so a
model has something real to learn:

- Cardiomegaly: heart shadow wider than half the chest (cardiothoracic ratio > 0.5).
- Effusion: fluid in the lower lung with a meniscus that blunts the costophrenic angle.
- Infiltration: a hazy, textured opacity in one lung zone.
- Mass: one large soft-edged opacity.
- Nodule: one or two bright round spots, a few pixels across at the demo's training size
  (version 1 drew them 1-2 px wide at 96 px, below what a small network learns in minutes).
- Pneumothorax: a dark rim without lung markings at the lung's edge, with a thin pleural line.

Patients have one to three films (follow-ups) so splits must be patient-disjoint. The output is a
folder an NIH reader accepts as is: ``Data_Entry_2017_v2020.csv``, ``images/*.png`` (8-bit),
``train_val_list.txt`` and ``test_list.txt``. Everything is deterministic for a seed.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image


DEMO_LABELS = ("Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumothorax")
# Version 2: every finding common enough that the ~90 test films hold 20+ positives of each
# (per-label AUC and the export gates need them), and findings sized for 64-96 px training.
PREVALENCE = {"Cardiomegaly": 0.3, "Effusion": 0.3, "Infiltration": 0.3, "Mass": 0.3,
              "Nodule": 0.3, "Pneumothorax": 0.3}
DEMO_VERSION = 2
CSV_HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
              "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")


@dataclass(frozen=True)
class DemoSpec:
    patients: int = 300
    image_size: int = 128  # written size; training resizes (the demo config trains at 64 px)
    test_fraction: float = 0.2
    seed: int = 0


def _smooth_noise(rng, size: int, cells: int) -> np.ndarray:
    coarse = rng.random((cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), dtype=np.float32)


def _ellipse(x, y, cx, cy, ax, ay):
    return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2


def _soft(inside_distance, edge: float):
    """1 inside (distance < 1), fading to 0 over ``edge`` in normalised distance."""
    return np.clip((1.0 - inside_distance) / edge, 0.0, 1.0)


def render_film(rng: np.random.Generator, anatomy: dict, findings: set[str], size: int) -> np.ndarray:
    """One film as float32 [size, size] in [0, 1]."""
    y, x = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    a = anatomy
    img = np.full((size, size), 0.08, np.float32)
    body = _soft(_ellipse(x, y, 0.5, 0.56, a["body_w"], 0.52), 0.08)
    img += 0.45 * body
    lungs = []
    for side in (-1, 1):
        cx = 0.5 + side * a["lung_dx"]
        lungs.append(_soft(_ellipse(x, y, cx, a["lung_cy"], a["lung_w"], a["lung_h"]), 0.12))
    markings = 0.6 + 0.4 * _smooth_noise(rng, size, 24)
    lung = np.maximum(*lungs)
    img -= 0.32 * lung * markings
    ribs = 0.5 + 0.5 * np.sin((y * 14 + 2.5 * (x - 0.5) ** 2) * np.pi * 2 + a["rib_phase"])
    img += 0.06 * lung * ribs**4
    img += 0.25 * _soft(np.abs(x - 0.5) / 0.035, 0.5) * body  # spine and mediastinum
    heart_w = a["heart_w"] * (1.55 if "Cardiomegaly" in findings else 1.0)
    img += 0.38 * _soft(_ellipse(x, y, 0.5 + a["heart_dx"], 0.64, heart_w, 0.13), 0.15)
    dome = 0.78 + 0.05 * np.cos((x - 0.5) * np.pi * 4)
    img += 0.35 * np.clip((y - dome) / 0.02, 0, 1) * body

    if "Effusion" in findings:
        side = rng.choice([-1, 1])
        cx = 0.5 + side * a["lung_dx"]
        level = a["lung_cy"] + a["lung_h"] * rng.uniform(0.25, 0.5)
        meniscus = level - 0.06 * np.clip(side * (x - cx) / a["lung_w"], 0, 1)  # rises laterally
        fluid = np.clip((y - meniscus) / 0.015, 0, 1) * lungs[(side + 1) // 2]
        img += 0.34 * fluid
    if "Infiltration" in findings:
        side, zone = rng.choice([-1, 1]), rng.uniform(-0.5, 0.4)
        cx, cy = 0.5 + side * a["lung_dx"], a["lung_cy"] + zone * a["lung_h"]
        patch = _soft(_ellipse(x, y, cx, cy, 0.1, 0.13), 0.6) * (0.5 + _smooth_noise(rng, size, 20))
        img += 0.34 * patch * lung
    if "Mass" in findings:
        side = rng.choice([-1, 1])
        cx = 0.5 + side * a["lung_dx"] + rng.uniform(-0.05, 0.05)
        cy = a["lung_cy"] + rng.uniform(-0.45, 0.2) * a["lung_h"]
        r = rng.uniform(0.065, 0.09)
        img += 0.45 * _soft(_ellipse(x, y, cx, cy, r, r * rng.uniform(0.8, 1.2)), 0.35)
    if "Nodule" in findings:
        for _ in range(rng.integers(1, 3)):
            side = rng.choice([-1, 1])
            cx = 0.5 + side * a["lung_dx"] + rng.uniform(-0.07, 0.07)
            cy = a["lung_cy"] + rng.uniform(-0.55, 0.35) * a["lung_h"]
            r = rng.uniform(0.032, 0.045)
            img += 0.5 * _soft(_ellipse(x, y, cx, cy, r, r), 0.3)
    if "Pneumothorax" in findings:
        side = rng.choice([-1, 1])
        cx = 0.5 + side * a["lung_dx"]
        k = (side + 1) // 2
        collapsed = _soft(_ellipse(x, y, cx - side * 0.03, a["lung_cy"] + 0.04,
                                   a["lung_w"] * 0.72, a["lung_h"] * 0.8), 0.05)
        rim = lungs[k] * (1 - collapsed)
        img += 0.32 * rim * (markings - 1.15)  # markings gone and darker than lung
        line = np.exp(-(((1 - collapsed) * collapsed) / 0.02) ** 2) * lungs[k] * (collapsed > 0.02)
        img += 0.12 * line

    img *= a["exposure"]
    img += rng.normal(0, 0.015, img.shape).astype(np.float32)
    return np.clip(img, 0, 1) ** a["gamma"]


def _anatomy(rng) -> dict:
    return {
        "body_w": rng.uniform(0.40, 0.47), "lung_dx": rng.uniform(0.17, 0.2),
        "lung_cy": rng.uniform(0.44, 0.48), "lung_w": rng.uniform(0.12, 0.145),
        "lung_h": rng.uniform(0.26, 0.3), "heart_w": rng.uniform(0.095, 0.115),
        "heart_dx": rng.uniform(0.02, 0.05), "rib_phase": rng.uniform(0, 2 * np.pi),
        "exposure": rng.uniform(0.9, 1.1), "gamma": rng.uniform(0.85, 1.15),
    }


def write_demo_dataset(out: str | Path, spec: DemoSpec = DemoSpec(), progress: bool = False) -> Path:
    """Write the demo dataset to ``out`` (replaced atomically as a whole folder)."""
    out = Path(out)
    rng = np.random.default_rng(spec.seed)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "images").mkdir(parents=True)
    rows, train_names, test_names = [], [], []
    patients = range(1, spec.patients + 1)
    test_patients = set(rng.choice(list(patients), int(round(spec.test_fraction * spec.patients)),
                                   replace=False).tolist())
    iterator = patients
    if progress:
        from tqdm import tqdm
        iterator = tqdm(patients, desc="writing demo films", unit="patient", disable=None)
    try:
        for patient in iterator:
            anatomy = _anatomy(rng)
            age, sex, view = int(rng.integers(18, 90)), rng.choice(["M", "F"]), rng.choice(["PA", "AP"])
            chronic = {lab for lab in ("Cardiomegaly",) if rng.random() < PREVALENCE[lab]}
            for follow_up in range(int(rng.choice([1, 1, 2, 3]))):
                findings = chronic | {lab for lab in DEMO_LABELS
                                      if lab not in chronic and rng.random() < PREVALENCE[lab]
                                      and lab != "Cardiomegaly"}
                name = f"{patient:08d}_{follow_up:03d}.png"
                film = render_film(rng, anatomy, findings, spec.image_size)
                Image.fromarray(np.round(film * 255).astype(np.uint8)).save(staging / "images" / name)
                labels = "|".join(lab for lab in DEMO_LABELS if lab in findings) or "No Finding"
                rows.append(f"{name},{labels},{follow_up},{patient},{age},{sex},{view},"
                            f"{spec.image_size},{spec.image_size},0.143,0.143")
                (test_names if patient in test_patients else train_names).append(name)
        (staging / "Data_Entry_2017_v2020.csv").write_text("\n".join([CSV_HEADER, *rows]) + "\n")
        (staging / "train_val_list.txt").write_text("\n".join(train_names) + "\n")
        (staging / "test_list.txt").write_text("\n".join(test_names) + "\n")
        info = {"version": DEMO_VERSION, "labels": list(DEMO_LABELS), "images": len(rows),
                **asdict(spec)}
        (staging / "demo.json").write_text(json.dumps(info, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out


def default_demo_dir() -> Path:
    base = Path(os.environ.get("TFCXR_CACHE", Path.home() / ".cache" / "tfcxr"))
    return base / f"demo-v{DEMO_VERSION}"


def ensure_demo_dataset(path: str | Path | None = None, spec: DemoSpec = DemoSpec()) -> Path:
    """The demo dataset: ``path`` as it is when given and present, else the user-cache copy
    (written on first use, rewritten when it is from another demo version or spec)."""
    if path is not None:
        path = Path(path)
        return path if (path / "demo.json").is_file() else write_demo_dataset(path, spec, progress=True)
    path = default_demo_dir()
    info_file = path / "demo.json"
    if info_file.is_file():
        info = json.loads(info_file.read_text())
        if info.get("version") == DEMO_VERSION and all(info.get(k) == v for k, v in asdict(spec).items()):
            return path
    return write_demo_dataset(path, spec, progress=True)
