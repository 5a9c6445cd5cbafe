"""Offline distillation: a teacher's per-image outputs, computed once and read back by image id.

File format (CSV): an image-id column (``image_id``, or NIH's ``Image Index``) and one column per
label, either ``logit_<Label>`` (what ``tfcxr teacher-predict`` writes) or ``prob_<Label>`` (what
outside teachers usually give, e.g. CheXNet's ``chexnet_teacher_probs.csv``). Probabilities are
turned into logits (clipped to [1e-6, 1 - 1e-6] first), so any teacher, a PyTorch or Keras 3 one
included, can teach through this file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tfcxr.data.manifest import Manifest
from tfcxr.data.pipeline import build_dataset
from tfcxr.errors import DatasetError
from tfcxr.io import atomic_path

ID_COLUMNS = ("image_id", "Image Index")
PROB_EPS = 1e-6


def write_teacher_logits(path: str | Path, image_ids, label_names, logits: np.ndarray) -> Path:
    frame = pd.DataFrame(np.asarray(logits, np.float32), columns=[f"logit_{n}" for n in label_names])
    frame.insert(0, "image_id", np.asarray(image_ids).astype(str))
    path = Path(path)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.7g")
    return path


def read_teacher_logits(path: str | Path, label_names) -> pd.DataFrame:
    """A frame indexed by image id with one logit column per label (in ``label_names`` order)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "teacher predictions file not found")
    try:
        frame = pd.read_csv(path, dtype={c: str for c in ID_COLUMNS})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DatasetError(path, f"cannot parse CSV: {e}") from None
    id_column = next((c for c in ID_COLUMNS if c in frame.columns), None)
    if id_column is None:
        raise DatasetError(path, f"no image id column (expected one of {list(ID_COLUMNS)})")
    if frame[id_column].duplicated().any():
        dupes = frame[id_column][frame[id_column].duplicated()].head(3).tolist()
        raise DatasetError(path, f"image ids appear more than once, e.g. {dupes}")
    columns = {}
    for label in label_names:
        if f"logit_{label}" in frame.columns:
            columns[label] = frame[f"logit_{label}"].to_numpy(np.float64)
        elif f"prob_{label}" in frame.columns:
            p = frame[f"prob_{label}"].to_numpy(np.float64)
            if np.nanmin(p) < 0 or np.nanmax(p) > 1:
                raise DatasetError(path, f"prob_{label} holds values outside [0, 1]")
            p = np.clip(p, PROB_EPS, 1 - PROB_EPS)
            columns[label] = np.log(p) - np.log1p(-p)
        else:
            raise DatasetError(path, f"no logit_{label} or prob_{label} column for label {label!r}")
        if np.isnan(columns[label]).any():
            raise DatasetError(path, f"missing values in the column for {label!r}")
    return pd.DataFrame(columns, index=frame[id_column].str.strip().to_numpy()).astype(np.float32)


def align_teacher_logits(manifest: Manifest, path: str | Path) -> np.ndarray:
    """[N, C] teacher logits in manifest row order; every manifest image must be in the file."""
    table = read_teacher_logits(path, manifest.label_names)
    missing = ~np.isin(manifest.image_ids, table.index)
    if missing.any():
        raise DatasetError(path, f"{int(missing.sum())} of {len(manifest)} images have no teacher "
                                 f"prediction, e.g. {manifest.image_ids[missing][:3].tolist()}")
    return table.loc[manifest.image_ids].to_numpy(np.float32)


def predict_logits(model, manifest: Manifest, spec, batch_size: int = 32) -> np.ndarray:
    """[N, C] logits of ``model`` over every manifest row, in row order (no augmentation)."""
    ds = build_dataset(manifest, spec, training=False, batch_size=batch_size)
    logits = model.predict(ds.map(lambda x, y, m: x), verbose=0)
    return np.asarray(logits, np.float32)
