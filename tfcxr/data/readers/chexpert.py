"""CheXpert (v1.0 and v1.0-small), read from ``train.csv`` / ``valid.csv``.

Label cells are 1.0 / 0.0 / -1.0 (uncertain) / blank (not mentioned); an ``UncertaintyPolicy``
turns them into targets and a loss mask. Frontal images only by default. The patient id is parsed
from the path (``.../patient00001/study1/view1_frontal.jpg``). ``train.csv`` gives train and a
patient-wise val carve-out; ``valid.csv`` (the 234-image expert-labelled set) is the test split.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import numpy as np

from tfcxr.data.labels import CHEXPERT_LABELS
from tfcxr.data.policies import UncertaintyPolicy
from tfcxr.data.problems import ProblemLog
from tfcxr.data.readers.base import assemble, escapes_root, parse_label_cells, read_csv_file, register_dataset
from tfcxr.data.splits import carve_validation

PATIENT_PATTERN = re.compile(r"(patient\d+)")
FILES = {"train.csv": "train", "valid.csv": "test"}


def resolve_chexpert_path(root: Path, csv_path: str) -> tuple[str, bool]:
    """CSV paths start with the release folder (``CheXpert-v1.0-small/train/...``).

    Accept ``root`` being that folder or its parent. Returns (path, exists); the path is the first
    candidate that exists, else the one relative to ``root`` without the release folder.
    """
    parts = PurePosixPath(csv_path).parts
    candidates = [str(PurePosixPath(*parts[1:]))] if len(parts) > 1 else []
    candidates.append(csv_path)
    for rel in candidates:
        if (root / rel).is_file():
            return str(root / rel), True
    if (root.parent / csv_path).is_file() and parts and parts[0] == root.name:
        return str(root.parent / csv_path), True
    return str(root / candidates[0]), False


def _escapes(root: Path, csv_path: str) -> bool:
    path = PurePosixPath(csv_path)
    inner = str(PurePosixPath(*path.parts[1:])) if len(path.parts) > 1 else csv_path
    return path.is_absolute() or escapes_root(root, inner)


@register_dataset("chexpert", "CheXpert (train.csv / valid.csv, 14 observations, uncertainty policies)")
def read_chexpert(root, *, policy="ignore", frontal_only: bool = True, val_fraction: float = 0.1,
                  seed: int = 0, log: ProblemLog | None = None, skip_bad: bool = False):
    root = Path(root)
    log = log if log is not None else ProblemLog()
    policy = UncertaintyPolicy.parse(policy)
    required = ("Path", "Frontal/Lateral", *CHEXPERT_LABELS)
    columns = {k: [] for k in ("paths", "ids", "patients", "views", "splits", "values", "bad")}
    notes = [f"uncertainty policy: {policy.describe()}"]
    found_any = False
    for name, split in FILES.items():
        csv_path = root / name
        if not csv_path.is_file() and name == "valid.csv" and found_any:
            log.warn("missing-file", csv_path, "file not found; no test split")
            continue
        frame = read_csv_file(csv_path, log, required)
        if frame is None:
            continue
        found_any = True
        if frontal_only:
            frontal = (frame["Frontal/Lateral"].str.strip() == "Frontal").to_numpy()
            notes.append(f"{name}: {len(frame)} rows, kept {int(frontal.sum())} frontal")
            frame = frame[frontal].reset_index(drop=True)
        values, bad = parse_label_cells(frame, CHEXPERT_LABELS, csv_path, log)
        rel_paths = frame["Path"].str.strip().to_numpy()
        escaping = np.array([_escapes(root, p) for p in rel_paths], dtype=bool)
        if escaping.any():
            log.add("path-escape", csv_path, "image path(s) point outside the dataset root",
                    count=int(escaping.sum()), examples=rel_paths[escaping])
        resolved = [resolve_chexpert_path(root, p) if not e else (p, False)
                    for p, e in zip(rel_paths, escaping)]
        exists = np.array([ok for _, ok in resolved], dtype=bool)
        missing = ~exists & ~escaping
        if missing.any():
            log.add("missing-image", csv_path, "image(s) listed in the CSV not found",
                    count=int(missing.sum()), examples=rel_paths[missing])
        patients = [PATIENT_PATTERN.search(p) for p in rel_paths]
        no_patient = np.array([m is None for m in patients])
        if no_patient.any():
            log.add("missing-patient", csv_path, "no 'patientNNNNN' folder in the path",
                    count=int(no_patient.sum()), examples=rel_paths[no_patient])
        lateral = frame["Frontal/Lateral"].str.strip() != "Frontal"
        ap_pa = frame["AP/PA"].str.strip() if "AP/PA" in frame else frame["Path"].map(lambda _: "")
        columns["paths"] += [p for p, _ in resolved]
        columns["ids"] += list(rel_paths)
        columns["patients"] += [m.group(1) if m else "" for m in patients]
        columns["views"] += list(np.where(lateral, "L", ap_pa))
        columns["splits"] += [split] * len(frame)
        columns["values"].append(values)
        columns["bad"].append(bad | escaping | missing | no_patient)
    if not found_any:
        log.raise_or_skip(False, 0)
        return None
    values = np.concatenate(columns["values"])
    targets, mask = policy.apply(values, CHEXPERT_LABELS)
    manifest = assemble(
        "chexpert", root, CHEXPERT_LABELS, paths=columns["paths"], image_ids=columns["ids"],
        patient_ids=columns["patients"], views=columns["views"], splits=columns["splits"],
        targets=targets, mask=mask, bad=np.concatenate(columns["bad"]), log=log,
        skip_bad=skip_bad, notes=notes)
    return carve_validation(manifest, val_fraction, seed)
