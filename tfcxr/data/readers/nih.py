"""NIH ChestX-ray14, read from the files NIH ships.

- ``Data_Entry_2017.csv`` (original: ages like ``058Y``, zero-padded ids, a trailing comma on every
  line) or ``Data_Entry_2017_v2020.csv`` (plain integers); ``Finding Labels`` is pipe-separated or
  ``No Finding``.
- Images under ``images/`` or ``images_001 .. images_012/images/`` (as unpacked from NIH's tarballs).
- The official patient-disjoint ``train_val_list.txt`` / ``test_list.txt``; a patient-wise
  validation set is carved out of train_val.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tfcxr.data.labels import NIH_LABELS, NIH_NO_FINDING
from tfcxr.data.problems import ProblemLog
from tfcxr.data.readers.base import LINE, assemble, read_csv_file, register_dataset
from tfcxr.data.splits import carve_validation, split_patients
from tfcxr.errors import DatasetError

CSV_NAMES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
REQUIRED_COLUMNS = ("Image Index", "Finding Labels", "Patient ID")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm")


def find_csv(root: Path) -> Path:
    for name in CSV_NAMES:
        if (root / name).is_file():
            return root / name
    return root / CSV_NAMES[0]


def index_images(root: Path) -> dict[str, Path]:
    """Map image file name -> path over ``images/`` and ``images_*/images/`` (and ``images_*/``)."""
    folders = [root / "images"]
    for entry in sorted(root.glob("images_*")):
        folders += [entry / "images", entry]
    index: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            with os.scandir(folder) as it:
                for e in it:
                    if e.name.lower().endswith(IMAGE_SUFFIXES):
                        index.setdefault(e.name, Path(e.path))
    return index


def normalize_patient_id(value: str) -> str:
    """``00000001`` (original CSV) and ``1`` (v2020 CSV) are the same patient."""
    value = value.strip()
    return str(int(value)) if value.isdigit() else value


def parse_findings(cells, lines, source: Path, log: ProblemLog):
    """Pipe-separated ``Finding Labels`` -> [N, 14] 0/1 targets and a per-row bad flag."""
    column = {label: j for j, label in enumerate(NIH_LABELS)}
    targets = np.zeros((len(cells), len(NIH_LABELS)), dtype=np.float32)
    bad = np.zeros(len(cells), dtype=bool)
    unknown: dict[str, int] = {}
    empty_rows = []
    for i, cell in enumerate(cells):
        names = [n.strip() for n in str(cell).split("|") if n.strip()]
        if not names:
            empty_rows.append(i)
            continue
        for name in names:
            if name == NIH_NO_FINDING:
                continue
            if name in column:
                targets[i, column[name]] = 1.0
            else:
                unknown[name] = unknown.get(name, 0) + 1
                bad[i] = True
    if empty_rows:
        bad[empty_rows] = True
        log.add("missing-label", source, "empty 'Finding Labels' (expected findings or "
                f"'{NIH_NO_FINDING}')", count=len(empty_rows),
                examples=[f"line {lines[i]}" for i in empty_rows])
    if unknown:
        log.add("unknown-label", source, f"unknown finding(s) in 'Finding Labels' (known: "
                f"{', '.join(NIH_LABELS)}, {NIH_NO_FINDING})", count=sum(unknown.values()),
                examples=[f"{k!r} x{v}" for k, v in unknown.items()])
    return targets, bad


def read_split_list(path: Path) -> set[str]:
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


@register_dataset("nih", "NIH ChestX-ray14 (Data_Entry_2017*.csv, images_*/, official split lists)")
def read_nih(root, *, csv: str | Path | None = None, labels=NIH_LABELS, views=("PA", "AP"),
             val_fraction: float = 0.1, seed: int = 0, log: ProblemLog | None = None,
             skip_bad: bool = False):
    """Read NIH ChestX-ray14 from ``root`` into a manifest with train/val/test splits.

    ``labels`` picks and orders the output labels (default: all 14 in CheXNet order); findings
    outside it are ignored, names that are not NIH findings are an error.
    """
    root = Path(root)
    labels = tuple(labels)
    unknown = [name for name in labels if name not in NIH_LABELS]
    if unknown:
        raise DatasetError(None, f"unknown NIH label(s) {unknown}; known: {', '.join(NIH_LABELS)}")
    log = log if log is not None else ProblemLog()
    csv_path = Path(csv) if csv else find_csv(root)
    if not csv_path.is_file() and not csv:
        log.add("missing-file", root, f"no {' or '.join(CSV_NAMES)} in the dataset folder")
        log.raise_or_skip(False, 0)
        return None
    frame = read_csv_file(csv_path, log, REQUIRED_COLUMNS, index_col=False)
    if frame is None:
        log.raise_or_skip(False, 0)
        return None
    notes = [f"read {csv_path.name}: {len(frame)} rows"]
    frame = frame[frame["Image Index"].str.strip() != ""].reset_index(drop=True)

    view = frame["View Position"].str.strip() if "View Position" in frame else None
    if view is None:
        log.warn("bad-column", csv_path, "no 'View Position' column; view filter not applied")
    elif views:
        keep = view.isin(list(views)).to_numpy()
        if (~keep).any():
            notes.append(f"views {list(views)}: dropped {int((~keep).sum())} rows")
        frame, view = frame[keep].reset_index(drop=True), view[keep].reset_index(drop=True)

    image_ids = frame["Image Index"].str.strip().to_numpy()
    all_targets, bad = parse_findings(frame["Finding Labels"].to_numpy(), frame[LINE].to_numpy(),
                                      csv_path, log)
    targets = all_targets[:, [NIH_LABELS.index(name) for name in labels]]

    index = index_images(root)
    paths = np.array([str(index.get(name, root / "images" / name)) for name in image_ids], dtype=object)
    missing = np.array([name not in index for name in image_ids], dtype=bool)
    if missing.any():
        log.add("missing-image", root / "images", "image(s) listed in the CSV not found under "
                "images/ or images_*/images/", count=int(missing.sum()), examples=image_ids[missing])
        bad |= missing

    splits = _official_splits(root, image_ids, frame["Patient ID"], log, seed, notes)
    bad |= splits == "conflict"
    patients = np.array([normalize_patient_id(p) for p in frame["Patient ID"]], dtype=object)
    manifest = assemble(
        "nih", root, labels, paths=paths, image_ids=image_ids, patient_ids=patients,
        views=view.to_numpy() if view is not None else np.full(len(frame), ""), splits=splits,
        targets=targets, mask=np.ones_like(targets), bad=bad | (splits == ""), log=log,
        skip_bad=skip_bad, notes=notes)
    return carve_validation(manifest, val_fraction, seed)


def _official_splits(root: Path, image_ids, patient_column, log: ProblemLog, seed: int, notes) -> np.ndarray:
    train_list, test_list = root / "train_val_list.txt", root / "test_list.txt"
    if not (train_list.is_file() and test_list.is_file()):
        log.warn("missing-file", root, "train_val_list.txt / test_list.txt not found; using a "
                 "patient-wise 80/20 split instead of NIH's official one")
        notes.append("split: patient-wise random 80/20 (official lists absent)")
        patients = [normalize_patient_id(p) for p in patient_column]
        return split_patients(patients, {"train": 0.8, "test": 0.2}, seed)
    train, test = read_split_list(train_list), read_split_list(test_list)
    splits = np.array(["train" if n in train else "test" if n in test else "" for n in image_ids],
                      dtype=object)
    both = np.array([n in train and n in test for n in image_ids])
    if both.any():
        log.add("split-conflict", test_list, "image(s) listed in both train_val_list.txt and "
                "test_list.txt", count=int(both.sum()), examples=np.asarray(image_ids)[both])
        splits[both] = "conflict"
    unlisted = splits == ""
    if unlisted.any():
        log.add("unlisted-image", train_list, "image(s) in the CSV are in neither split list",
                count=int(unlisted.sum()), examples=np.asarray(image_ids)[unlisted])
    notes.append("split: official train_val_list.txt / test_list.txt")
    return splits


@register_dataset("demo", "the embedded synthetic dataset (NIH format, 6 findings; written on first use)")
def read_demo(root=None, **options):
    """The demo dataset at ``root`` (default: the user cache, written on first use)."""
    from tfcxr.data.demo import DEMO_LABELS, ensure_demo_dataset

    options.setdefault("labels", DEMO_LABELS)
    manifest = read_nih(ensure_demo_dataset(root), **options)
    manifest.dataset = "demo"
    return manifest
