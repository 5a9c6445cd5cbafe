"""PadChest, read from ``PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv`` (or ``.csv.gz``).

``Labels`` is a Python list literal of lower-case findings (``['pleural effusion', 'cardiomegaly']``,
``['normal']``); rows with no labels (NaN), ``['exclude']`` or ``['suboptimal study']`` carry no
usable labels and are left out (counted in the manifest notes). Images are 16-bit PNGs at
``ImageDir/ImageID`` (or flat in the root). The view comes from ``Projection``. PadChest has no
official split: patients (``PatientID``) are split at random, by seed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from tfcxr.data.labels import PADCHEST_DEFAULT_LABELS, PADCHEST_EXCLUDED, PADCHEST_NORMAL
from tfcxr.data.problems import ProblemLog
from tfcxr.data.readers.base import LINE, assemble, escapes_root, read_csv_file, register_dataset
from tfcxr.data.splits import split_patients

CSV_GLOB = "PADCHEST_chest_x_ray_images_labels_160K*.csv*"
REQUIRED_COLUMNS = ("ImageID", "ImageDir", "PatientID", "Projection", "Labels")
DEFAULT_VIEWS = ("PA", "AP", "AP_horizontal")
DEFAULT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def find_csv(root: Path) -> Path:
    found = sorted(root.glob(CSV_GLOB))
    return found[0] if found else root / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"


def parse_labels_cell(cell: str) -> list[str] | None:
    """``"['a', ' b']"`` -> ``['a', 'b']``; blank/NaN -> ``None``; raises ValueError if malformed."""
    text = str(cell).strip()
    if text in ("", "nan", "NaN", "None"):
        return None
    try:
        value = ast.literal_eval(text)
    except SyntaxError as e:
        raise ValueError(f"not a list literal: {text!r}") from e
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"not a list: {text!r}")
    return [str(v).strip().lower() for v in value if str(v).strip()]


def matches(finding: str, term: str) -> bool:
    return finding == term or finding.endswith(" " + term)


def normalize_label_map(labels) -> dict[str, tuple[str, ...]]:
    """A label subset: a mapping output label -> PadChest terms, or a list of PadChest terms."""
    if labels is None:
        return dict(PADCHEST_DEFAULT_LABELS)
    if isinstance(labels, dict):
        return {str(k): tuple(str(t).strip().lower() for t in ([v] if isinstance(v, str) else v))
                for k, v in labels.items()}
    return {str(t): (str(t).strip().lower(),) for t in labels}


@register_dataset("padchest", "PadChest (160K CSV, list-literal Labels, 16-bit PNG, patient-wise split)")
def read_padchest(root, *, csv: str | Path | None = None, labels=None, views=DEFAULT_VIEWS,
                  fractions=None, seed: int = 0, log: ProblemLog | None = None,
                  skip_bad: bool = False):
    root = Path(root)
    log = log if log is not None else ProblemLog()
    label_map = normalize_label_map(labels)
    label_names = tuple(label_map)
    csv_path = Path(csv) if csv else find_csv(root)
    frame = read_csv_file(csv_path, log, REQUIRED_COLUMNS, low_memory=False)
    if frame is None:
        log.raise_or_skip(False, 0)
        return None
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("Unnamed")])
    notes = [f"read {csv_path.name}: {len(frame)} rows"]
    if views:
        keep = frame["Projection"].str.strip().isin(list(views)).to_numpy()
        notes.append(f"views {list(views)}: kept {int(keep.sum())}")
        frame = frame[keep].reset_index(drop=True)

    parsed, malformed = [], []
    for i, cell in enumerate(frame["Labels"]):
        try:
            parsed.append(parse_labels_cell(cell))
        except ValueError:
            parsed.append(None)
            malformed.append(i)
    if malformed:
        log.add("bad-label-value", csv_path, "'Labels' is not a list literal",
                count=len(malformed), examples=[f"line {frame[LINE].iloc[i]}: {frame['Labels'].iloc[i]!r}"
                                                for i in malformed])
    no_labels = np.array([p is None for p in parsed]) & ~np.isin(np.arange(len(parsed)), malformed)
    excluded = np.array([p is not None and any(t in PADCHEST_EXCLUDED for t in p) for p in parsed])
    unusable = no_labels | excluded
    notes.append(f"left out {int(no_labels.sum())} rows without labels and {int(excluded.sum())} "
                 "marked exclude / suboptimal study")

    targets = np.zeros((len(frame), len(label_names)), dtype=np.float32)
    for i, findings in enumerate(parsed):
        for j, terms in enumerate(label_map.values()):
            if findings and any(matches(f, t) for f in findings for t in terms):
                targets[i, j] = 1.0
    normal_only = sum(1 for p in parsed if p == [PADCHEST_NORMAL])
    notes.append(f"{normal_only} rows labelled only '{PADCHEST_NORMAL}'")

    rel = [f"{d.strip()}/{i.strip()}" for d, i in zip(frame["ImageDir"], frame["ImageID"])]
    escaping = np.array([escapes_root(root, r) for r in rel], dtype=bool)
    if escaping.any():
        log.add("path-escape", csv_path, "image path(s) point outside the dataset root",
                count=int(escaping.sum()), examples=np.asarray(rel)[escaping])
    paths, missing = [], np.zeros(len(rel), dtype=bool)
    for k, (r, image_id) in enumerate(zip(rel, frame["ImageID"].str.strip())):
        nested, flat = root / r, root / image_id
        path = nested if nested.is_file() or not flat.is_file() else flat
        paths.append(str(path))
        missing[k] = not escaping[k] and not unusable[k] and not path.is_file()
    if missing.any():
        log.add("missing-image", csv_path, "image(s) listed in the CSV not found at ImageDir/ImageID",
                count=int(missing.sum()), examples=np.asarray(rel)[missing])

    patients = frame["PatientID"].str.strip().to_numpy()
    splits = split_patients(patients, dict(fractions or DEFAULT_FRACTIONS), seed)
    notes.append(f"split: patient-wise {dict(fractions or DEFAULT_FRACTIONS)} (seed {seed})")
    keep = ~unusable
    bad = (escaping | missing | np.isin(np.arange(len(frame)), malformed))[keep]
    return assemble(
        "padchest", root, label_names, paths=np.asarray(paths, dtype=object)[keep],
        image_ids=frame["ImageID"].str.strip().to_numpy()[keep], patient_ids=patients[keep],
        views=frame["Projection"].str.strip().to_numpy()[keep], splits=splits[keep],
        targets=targets[keep], mask=np.ones_like(targets[keep]), bad=bad, log=log,
        skip_bad=skip_bad, notes=notes)
