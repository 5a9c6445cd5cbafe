"""Patient-disjoint splits: every patient's images land in exactly one split."""

from __future__ import annotations

import numpy as np

from tfcxr.data.manifest import Manifest


def split_patients(patient_ids, fractions: dict[str, float], seed: int) -> np.ndarray:
    """Assign each row a split name so that no patient is in two splits.

    Patients (not images) are shuffled with ``seed`` and cut by ``fractions`` (which must sum to 1),
    so the result is deterministic for a seed and independent of row order.
    """
    total = sum(fractions.values())
    if not np.isclose(total, 1.0) or any(f < 0 for f in fractions.values()):
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    patients = np.unique(np.asarray(patient_ids).astype(str))
    order = np.random.default_rng(seed).permutation(len(patients))
    bounds = np.round(np.cumsum([0.0, *fractions.values()]) * len(patients)).astype(int)
    assignment = {}
    for name, lo, hi in zip(fractions, bounds[:-1], bounds[1:]):
        for p in patients[order[lo:hi]]:
            assignment[p] = name
    return np.array([assignment[p] for p in np.asarray(patient_ids).astype(str)], dtype=object)


def carve_validation(manifest: Manifest, fraction: float, seed: int,
                     source: str = "train") -> Manifest:
    """Move a patient-wise ``fraction`` of the ``source`` split's patients into ``val``."""
    if not 0 <= fraction < 1:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    splits = manifest.splits.copy()
    rows = splits == source
    if fraction > 0 and rows.any():
        carved = split_patients(manifest.patient_ids[rows],
                                {source: 1 - fraction, "val": fraction}, seed)
        splits[rows] = carved
    out = manifest.with_splits(splits)
    out.notes.append(f"validation: {fraction:.0%} of {source} patients (seed {seed})")
    return out
