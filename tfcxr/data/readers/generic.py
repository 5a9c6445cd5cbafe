"""Your own data: a CSV with an image-path column and one column per label.

Label cells are 1 / 0 / -1 / blank, handled by an ``UncertaintyPolicy``. An optional patient column
keeps splits patient-disjoint (without one, every image counts as its own patient, which is only
safe with one image per patient); an optional split column (train / val / test) is used as given,
otherwise patients are split at random by seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfcxr.data.policies import UncertaintyPolicy
from tfcxr.data.problems import ProblemLog
from tfcxr.data.readers.base import LINE, assemble, escapes_root, parse_label_cells, read_csv_file, register_dataset
from tfcxr.data.splits import split_patients

DEFAULT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


@register_dataset("csv", "any CSV: image-path column + one column per label (1/0/-1/blank)")
def read_csv_dataset(root, *, csv: str | Path | None = None, image_column: str = "path",
                     label_columns=None, patient_column: str | None = None,
                     view_column: str | None = None, split_column: str | None = None,
                     policy="zeros", fractions=None, seed: int = 0,
                     log: ProblemLog | None = None, skip_bad: bool = False):
    """``root`` is the folder image paths are relative to; ``csv`` defaults to ``root/labels.csv``."""
    root = Path(root)
    log = log if log is not None else ProblemLog()
    policy = UncertaintyPolicy.parse(policy)
    csv_path = Path(csv) if csv else root / "labels.csv"
    optional = [c for c in (patient_column, view_column, split_column) if c]
    frame = read_csv_file(csv_path, log, (image_column, *optional, *(label_columns or ())))
    if frame is None:
        log.raise_or_skip(False, 0)
        return None
    labels = list(label_columns) if label_columns else [
        c for c in frame.columns if c not in (image_column, *optional, LINE)]
    if not labels:
        log.add("bad-column", csv_path, "no label columns")
        log.raise_or_skip(False, 0)
    values, bad = parse_label_cells(frame, labels, csv_path, log)
    notes = [f"read {csv_path.name}: {len(frame)} rows, labels {labels}",
             f"uncertainty policy: {policy.describe()}"]

    rel = frame[image_column].str.strip().to_numpy()
    escaping = np.array([escapes_root(root, r) for r in rel], dtype=bool)
    if escaping.any():
        log.add("path-escape", csv_path, "image path(s) point outside the dataset root",
                count=int(escaping.sum()), examples=rel[escaping])
    paths = np.array([str(root / r) for r in rel], dtype=object)
    missing = np.array([not e and not Path(p).is_file() for p, e in zip(paths, escaping)])
    if missing.any():
        log.add("missing-image", csv_path, f"image(s) in column {image_column!r} not found",
                count=int(missing.sum()), examples=rel[missing])

    if patient_column:
        patients = frame[patient_column].str.strip().to_numpy()
    else:
        patients = rel
        notes.append("no patient column: each image is its own patient")
    if split_column:
        splits = frame[split_column].str.strip().str.lower().to_numpy()
        invalid = ~np.isin(splits, ("train", "val", "test"))
        if invalid.any():
            log.add("bad-split", csv_path, f"column {split_column!r} must hold train, val or test",
                    count=int(invalid.sum()), examples=splits[invalid])
            bad |= invalid
    else:
        splits = split_patients(patients, dict(fractions or DEFAULT_FRACTIONS), seed)
        notes.append(f"split: patient-wise {dict(fractions or DEFAULT_FRACTIONS)} (seed {seed})")
    targets, mask = policy.apply(values, labels)
    views = frame[view_column].str.strip().to_numpy() if view_column else np.full(len(frame), "")
    return assemble("csv", root, labels, paths=paths, image_ids=rel, patient_ids=patients,
                    views=views, splits=splits, targets=targets, mask=mask,
                    bad=bad | escaping | missing, log=log, skip_bad=skip_bad, notes=notes)
