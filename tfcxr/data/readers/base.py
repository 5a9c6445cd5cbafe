"""What every dataset reader shares: the registry, safe path resolution and manifest assembly."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tfcxr.data.manifest import Manifest
from tfcxr.data.problems import ProblemLog
from tfcxr.errors import DatasetError

_READERS: dict[str, "DatasetReader"] = {}
LINE = "__line__"


@dataclass(frozen=True)
class DatasetReader:
    name: str
    read: Callable[..., Manifest]  # read(root, *, log=None, skip_bad=False, **options)
    description: str


def register_dataset(name: str, description: str):
    def decorator(fn):
        if name in _READERS:
            raise ValueError(f"dataset reader {name!r} is registered twice")
        _READERS[name] = DatasetReader(name, fn, description)
        return fn

    return decorator


def dataset_names() -> list[str]:
    return sorted(_READERS)


def get_reader(name: str) -> DatasetReader:
    try:
        return _READERS[name]
    except KeyError:
        raise DatasetError(None, f"unknown dataset {name!r}; known: {', '.join(dataset_names())}") from None


def read_csv_file(path: Path, log: ProblemLog, required: tuple[str, ...], **kwargs) -> pd.DataFrame | None:
    """Read a CSV as strings; log a missing file or missing columns and return None for them."""
    if not path.is_file():
        log.add("missing-file", path, "file not found")
        return None
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        log.add("bad-csv", path, f"cannot parse CSV: {str(e).strip()}")
        return None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        log.add("bad-column", path, f"missing column(s) {missing}; found {list(frame.columns)[:12]}")
        return None
    frame[LINE] = np.arange(len(frame)) + 2  # the file's line number (1 is the header), for messages
    return frame


def escapes_root(root: Path, relative: str) -> bool:
    """True when ``relative`` points outside ``root`` (absolute paths, ``..`` segments)."""
    root_norm = os.path.normpath(os.path.abspath(root))
    target = os.path.normpath(os.path.join(root_norm, relative))
    return not (target == root_norm or target.startswith(root_norm + os.sep))


def parse_label_cells(frame: pd.DataFrame, columns, source: Path, log: ProblemLog) -> tuple[np.ndarray, np.ndarray]:
    """Cells of 1 / 0 / -1 / blank as float (blank -> NaN); flag rows with any other value."""
    values = np.full((len(frame), len(columns)), np.nan, dtype=np.float32)
    bad = np.zeros(len(frame), dtype=bool)
    for j, column in enumerate(columns):
        text = frame[column].astype(str).str.strip()
        numeric = pd.to_numeric(text.where(text != ""), errors="coerce").to_numpy(np.float64)
        invalid = (text != "").to_numpy() & ~np.isin(numeric, (1.0, 0.0, -1.0))
        if invalid.any():
            examples = [f"line {frame[LINE].iloc[i]}: {text.iloc[i]!r}" for i in np.flatnonzero(invalid)[:5]]
            log.add("bad-label-value", source, f"column {column!r} holds values other than "
                    "1, 0, -1 or blank", count=int(invalid.sum()), examples=examples)
            bad |= invalid
        values[:, j] = np.where(invalid, np.nan, numeric)
    return values, bad


def assemble(dataset: str, root: Path, label_names, *, paths, image_ids, patient_ids, views,
             splits, targets, mask, bad: np.ndarray, log: ProblemLog, skip_bad: bool,
             notes: list[str]) -> Manifest:
    """Drop or refuse bad rows (per ``skip_bad``), build the manifest and check patient splits."""
    keep = ~np.asarray(bad, dtype=bool)
    note = log.raise_or_skip(skip_bad, int((~keep).sum()))
    if note:
        notes = [*notes, note]
    manifest = Manifest(dataset, root, label_names, np.asarray(paths, dtype=object)[keep],
                        np.asarray(image_ids, dtype=object)[keep],
                        np.asarray(patient_ids, dtype=object)[keep],
                        np.asarray(views, dtype=object)[keep], np.asarray(splits, dtype=object)[keep],
                        np.asarray(targets)[keep], np.asarray(mask)[keep], notes)
    leaks = manifest.leaking_patients()
    if leaks:
        examples = [f"{p} in {'+'.join(s)}" for p, s in list(leaks.items())[:5]]
        log.add("patient-leak", root, "patient(s) appear in more than one split",
                count=len(leaks), examples=examples)
        if not log.collect:
            manifest.check_patient_disjoint()
    return manifest
