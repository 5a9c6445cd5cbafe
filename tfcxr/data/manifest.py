"""One manifest shape for every dataset, so everything downstream is dataset-agnostic.

A ``Manifest`` is a table of images: absolute path, image id, patient id, view and split, plus a
label matrix ``targets`` (N x C, 0/1 as float32) and a ``mask`` of the same shape (1 where the label
is known and counts in the supervised loss, 0 where it is uncertain or missing under the chosen
policy). Readers build one; splits, the pipeline, checks and exporters only ever see this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tfcxr.errors import DatasetError
from tfcxr.io import atomic_path

SPLITS = ("train", "val", "test")


class PatientLeakError(DatasetError):
    """A patient appears in more than one split."""


@dataclass
class Manifest:
    dataset: str
    root: Path
    label_names: tuple[str, ...]
    paths: np.ndarray  # absolute image paths (str)
    image_ids: np.ndarray  # dataset's own image name, the key for teacher predictions (str)
    patient_ids: np.ndarray  # str
    views: np.ndarray  # e.g. "PA", "AP", "L" (str, "" when unknown)
    splits: np.ndarray  # "train" | "val" | "test" | "" (not assigned yet)
    targets: np.ndarray  # float32 [N, C] in {0, 1}
    mask: np.ndarray  # float32 [N, C] in {0, 1}; targets are 0 wherever mask is 0
    notes: list[str] = field(default_factory=list)  # what the reader did (filters, policies)
    prepared: Path | None = None  # a folder of prepared films (tfcxr.data.prepared) holding these

    def __post_init__(self):
        self.root = Path(self.root)
        self.label_names = tuple(self.label_names)
        n, c = len(self.paths), len(self.label_names)
        for name in ("paths", "image_ids", "patient_ids", "views", "splits"):
            arr = np.asarray(getattr(self, name), dtype=object).astype(str)
            if arr.shape != (n,):
                raise ValueError(f"manifest column {name!r} has shape {arr.shape}, expected ({n},)")
            setattr(self, name, arr)
        for name in ("targets", "mask"):
            arr = np.asarray(getattr(self, name), dtype=np.float32).reshape(n, c)
            if not np.isin(arr, (0.0, 1.0)).all():
                raise ValueError(f"manifest {name} must hold only 0 and 1")
            setattr(self, name, arr)
        self.targets = self.targets * self.mask  # a masked-out label carries no target

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def select(self, index) -> "Manifest":
        """A new manifest with the rows picked by a boolean mask or integer index."""
        index = np.asarray(index)
        return Manifest(
            self.dataset, self.root, self.label_names, self.paths[index], self.image_ids[index],
            self.patient_ids[index], self.views[index], self.splits[index], self.targets[index],
            self.mask[index], list(self.notes), self.prepared,
        )

    def split(self, name: str) -> "Manifest":
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return self.select(self.splits == name)

    def with_splits(self, splits: Sequence[str]) -> "Manifest":
        out = self.select(np.arange(len(self)))
        out.splits = np.asarray(splits, dtype=object).astype(str)
        if out.splits.shape != (len(self),):
            raise ValueError("one split name per row is required")
        return out

    def leaking_patients(self) -> dict[str, list[str]]:
        """Patients found in more than one split, with the splits they are in."""
        frame = pd.DataFrame({"patient": self.patient_ids, "split": self.splits})
        frame = frame[frame.split != ""]
        per_patient = frame.groupby("patient")["split"].unique()
        return {p: sorted(s) for p, s in per_patient.items() if len(s) > 1}

    def check_patient_disjoint(self) -> None:
        leaks = self.leaking_patients()
        if leaks:
            examples = ", ".join(f"{p} in {'+'.join(s)}" for p, s in list(leaks.items())[:5])
            raise PatientLeakError(
                self.root, f"{len(leaks)} patient(s) appear in more than one split ({examples})")

    def label_counts(self) -> pd.DataFrame:
        """Positives, negatives and masked-out entries per label and split."""
        rows = []
        for split in [s for s in (*SPLITS, "") if (self.splits == s).any()]:
            sel = self.splits == split
            t, m = self.targets[sel], self.mask[sel]
            for j, label in enumerate(self.label_names):
                rows.append({
                    "split": split or "unassigned", "label": label,
                    "positive": int(((t[:, j] == 1) & (m[:, j] == 1)).sum()),
                    "negative": int(((t[:, j] == 0) & (m[:, j] == 1)).sum()),
                    "masked": int((m[:, j] == 0).sum()),
                })
        return pd.DataFrame(rows, columns=["split", "label", "positive", "negative", "masked"])

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({
            "path": self.paths, "image_id": self.image_ids, "patient_id": self.patient_ids,
            "view": self.views, "split": self.splits,
        })
        for j, label in enumerate(self.label_names):
            frame[label] = np.where(self.mask[:, j] == 1, self.targets[:, j], np.nan)
        return frame

    def save_csv(self, path: str | Path) -> None:
        """Write the manifest as CSV (labels as 1/0, blank where masked), atomically."""
        with atomic_path(path) as tmp:
            self.to_frame().to_csv(tmp, index=False)

    @classmethod
    def load_csv(cls, path: str | Path, dataset: str = "manifest", root: str | Path | None = None):
        path = Path(path)
        frame = pd.read_csv(path, dtype={"path": str, "image_id": str, "patient_id": str,
                                         "view": str, "split": str}, keep_default_na=False,
                            na_values={"": ""})
        fixed = ["path", "image_id", "patient_id", "view", "split"]
        missing = [c for c in fixed if c not in frame.columns]
        if missing:
            raise DatasetError(path, f"not a tfcxr manifest: missing columns {missing}")
        labels = [c for c in frame.columns if c not in fixed]
        values = frame[labels].apply(pd.to_numeric, errors="coerce").to_numpy(np.float32)
        mask = (~np.isnan(values)).astype(np.float32)
        return cls(dataset, root or path.parent, labels, frame.path.to_numpy(),
                   frame.image_id.to_numpy(), frame.patient_id.to_numpy(), frame.view.to_numpy(),
                   frame.split.to_numpy(), np.nan_to_num(values, nan=0.0), mask)
