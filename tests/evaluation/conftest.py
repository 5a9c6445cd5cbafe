"""Real labels and real CheXNet probabilities for the 621-image NIH sample, row-aligned."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from tfcxr.data.labels import NIH_LABELS


@dataclass(frozen=True)
class ScoredSample:
    image_ids: np.ndarray
    patient_ids: np.ndarray
    labels: np.ndarray  # [621, 14] 0/1
    probs: np.ndarray  # [621, 14] CheXNet probabilities
    label_names: tuple


@pytest.fixture(scope="session")
def chexnet(nih_sample) -> ScoredSample:
    probs_csv = nih_sample / "chexnet_teacher_probs.csv"
    if not probs_csv.is_file():
        pytest.skip(f"CheXNet probabilities not found at {probs_csv}")
    entries = pd.read_csv(nih_sample / "Data_Entry_2017_v2020.csv")
    probs = pd.read_csv(probs_csv).set_index("Image Index").loc[entries["Image Index"]]
    findings = entries["Finding Labels"].str.split("|")
    labels = np.array([[name in f for name in NIH_LABELS] for f in findings], dtype=np.float64)
    return ScoredSample(entries["Image Index"].to_numpy(), entries["Patient ID"].to_numpy(),
                        labels, probs[[f"prob_{n}" for n in NIH_LABELS]].to_numpy(np.float64),
                        tuple(NIH_LABELS))


def synthetic_sample(seed: int = 0, patients: int = 320) -> ScoredSample:
    """A stand-in for the NIH sample with the same shape, made from numbers alone: 1-3 films per
    patient, the 14 NIH labels at NIH-like prevalences (each with dozens of positives), and
    calibrated scores with signal: a per-patient effect plus per-film noise gives a risk z, the
    label is drawn with probability sigmoid(z) and the score is that probability rounded to three
    decimals (ties, as real model outputs have)."""
    rng = np.random.default_rng(seed)
    films_per_patient = rng.integers(1, 4, patients)
    patient_ids = np.repeat(np.arange(patients), films_per_patient)
    n = len(patient_ids)
    prevalence = np.array([0.15, 0.05, 0.15, 0.2, 0.06, 0.14, 0.03, 0.05, 0.05, 0.04, 0.04,
                           0.04, 0.05, 0.03])
    base = np.log(prevalence / (1 - prevalence))
    risk = (base + rng.normal(0, 1.0, (patients, len(NIH_LABELS)))[patient_ids]
            + rng.normal(0, 1.0, (n, len(NIH_LABELS))))
    probs = np.round(1 / (1 + np.exp(-risk)), 3)
    labels = (rng.random(probs.shape) < probs).astype(np.float64)
    return ScoredSample(np.array([f"synthetic_{i:04d}.png" for i in range(n)]), patient_ids,
                        labels, probs, tuple(NIH_LABELS))


@pytest.fixture(scope="session")
def synthetic() -> ScoredSample:
    return synthetic_sample()


@pytest.fixture(params=["synthetic", "chexnet"])
def scores(request) -> ScoredSample:
    """Labels and scores for the pure-numpy tests: synthetic ones that need nothing beside the
    clone, and the real CheXNet ones on the NIH sample (skipped on a bare clone)."""
    return request.getfixturevalue(request.param)
