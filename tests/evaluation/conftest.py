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
