"""The one input contract of every evaluation function, checked at the boundary.

Arrays are ``[N, C]``: ``labels`` 0/1 (anything, NaN included, where masked), ``probs``
probabilities in [0, 1], ``mask`` 1 where the label counts (None: all count); ``patient_ids``
one per row. Evaluation is where a user hands over a model's outputs, so a wrong shape, a NaN
score or logits passed as probabilities raise ``TfcxrError`` naming the array and the problem,
instead of a NumPy broadcast error or a silently wrong AUC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tfcxr.errors import TfcxrError


@dataclass(frozen=True)
class EvalArrays:
    labels: np.ndarray  # [N, C] float64, 0/1 where counted, 0 where masked
    probs: np.ndarray  # [N, C] float64 in [0, 1]
    mask: np.ndarray  # [N, C] bool
    label_names: tuple[str, ...]


def check_arrays(labels, probs, mask, label_names: Sequence[str] | None = None,
                 *, probs_name: str = "probs", probabilities: bool = True) -> EvalArrays:
    """Validate and normalize one score set; ``label_names`` None names the columns 0..C-1.

    ``probabilities`` False accepts any finite scores (logits rank the same for AUC).
    """
    labels = np.asarray(labels, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    if labels.ndim != 2:
        raise TfcxrError(f"labels must be a 2-D [images, labels] array, got shape {labels.shape}")
    if probs.shape != labels.shape:
        raise TfcxrError(f"{probs_name} has shape {probs.shape} but labels has shape "
                         f"{labels.shape}: they must be the same [images, labels] shape")
    if mask is None:
        mask = np.ones(labels.shape, dtype=bool)
    else:
        mask = np.asarray(mask)
        if mask.shape != labels.shape:
            raise TfcxrError(f"mask has shape {mask.shape} but labels has shape {labels.shape}")
        mask = np.nan_to_num(mask.astype(np.float64)) > 0
    names = tuple(str(j) for j in range(labels.shape[1])) if label_names is None \
        else tuple(label_names)
    if len(names) != labels.shape[1]:
        raise TfcxrError(f"{len(names)} label names for {labels.shape[1]} label columns")
    if len(set(names)) != len(names):
        raise TfcxrError(f"label names must be unique, got {list(names)}")
    bad = ~np.isfinite(probs)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise TfcxrError(f"{probs_name} holds {int(bad.sum())} NaN/infinite score(s), first at "
                         f"row {row}, label {names[col]!r}: the model output is not usable")
    if probabilities and probs.size and (probs.min() < 0 or probs.max() > 1):
        raise TfcxrError(f"{probs_name} must be probabilities in [0, 1], got values from "
                         f"{probs.min():.4g} to {probs.max():.4g} (logits? apply a sigmoid first)")
    counted = labels[mask]
    if not np.isin(counted, (0.0, 1.0)).all():
        odd = np.unique(counted[~np.isin(counted, (0.0, 1.0))])[:5]
        raise TfcxrError(f"labels must be 0 or 1 where the mask counts them, found {odd.tolist()}"
                         " (mask uncertain or missing labels out)")
    return EvalArrays(np.where(mask, labels, 0.0), probs, mask, names)


def check_patient_ids(patient_ids, n_images: int) -> np.ndarray:
    """Patient ids -> integer codes 0..P-1, one per row (ids compare as strings: 7 == "7")."""
    ids = np.asarray(patient_ids)
    if ids.ndim != 1 or len(ids) != n_images:
        raise TfcxrError(f"patient_ids must hold one id per image: got shape {ids.shape} for "
                         f"{n_images} images")
    as_text = ids.astype(str)
    if (np.char.strip(as_text) == "").any() or (as_text == "nan").any():
        raise TfcxrError("patient_ids has empty or missing ids: every image needs its patient")
    return np.unique(as_text, return_inverse=True)[1].reshape(-1)
