import numpy as np
import pytest

from tfcxr.data.manifest import Manifest, PatientLeakError
from tfcxr.data.policies import UncertaintyPolicy
from tfcxr.data.splits import carve_validation, split_patients


def make_manifest(n=40, labels=("A", "B")):
    rng = np.random.default_rng(0)
    patients = np.array([f"p{i // 3}" for i in range(n)])
    targets = (rng.random((n, len(labels))) < 0.3).astype(np.float32)
    mask = np.ones_like(targets)
    mask[0, 1] = 0
    return Manifest("test", "/data", labels, [f"/data/{i}.png" for i in range(n)],
                    [f"{i}.png" for i in range(n)], patients, ["PA"] * n, ["train"] * n,
                    targets, mask)


def test_split_patients_is_patient_disjoint_and_deterministic():
    patients = np.repeat(np.arange(100), 3).astype(str)
    a = split_patients(patients, {"train": 0.7, "val": 0.1, "test": 0.2}, seed=5)
    b = split_patients(patients[::-1], {"train": 0.7, "val": 0.1, "test": 0.2}, seed=5)[::-1]
    np.testing.assert_array_equal(a, b)  # independent of row order
    for p in np.unique(patients):
        assert len(set(a[patients == p])) == 1
    assert sorted(set(a)) == ["test", "train", "val"]
    assert abs((a == "test").mean() - 0.2) < 0.02


def test_split_fractions_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        split_patients(["a"], {"train": 0.5, "test": 0.2}, seed=0)


def test_carve_validation_moves_whole_patients():
    m = carve_validation(make_manifest(), 0.25, seed=1)
    assert (m.splits == "val").any() and not m.leaking_patients()


def test_leak_is_detected_and_named():
    m = make_manifest()
    splits = m.splits.copy()
    splits[0] = "test"  # p0 now in train and test
    leaky = m.with_splits(splits)
    assert leaky.leaking_patients() == {"p0": ["test", "train"]}
    with pytest.raises(PatientLeakError, match="p0 in test\\+train"):
        leaky.check_patient_disjoint()


def test_manifest_csv_round_trip_keeps_mask(tmp_path):
    m = make_manifest()
    m.save_csv(tmp_path / "m.csv")
    back = Manifest.load_csv(tmp_path / "m.csv")
    np.testing.assert_array_equal(back.targets, m.targets)
    np.testing.assert_array_equal(back.mask, m.mask)
    np.testing.assert_array_equal(back.patient_ids, m.patient_ids)
    assert back.label_names == m.label_names


def test_label_counts_respect_mask():
    counts = make_manifest().label_counts()
    b = counts[counts.label == "B"].iloc[0]
    assert b.positive + b.negative + b.masked == 40 and b.masked == 1


def test_manifest_rejects_non_binary_targets():
    with pytest.raises(ValueError, match="only 0 and 1"):
        Manifest("t", "/", ("A",), ["x"], ["x"], ["p"], [""], ["train"], [[0.5]], [[1]])


def test_policy_apply():
    values = np.array([[1, 0, -1, np.nan]] * 1, np.float32).T.reshape(4, 1).repeat(2, 1)
    targets, mask = UncertaintyPolicy(default="ignore", per_label={"B": "ones"}).apply(values, ["A", "B"])
    assert targets[:, 0].tolist() == [1, 0, 0, 0] and mask[:, 0].tolist() == [1, 1, 0, 1]
    assert targets[:, 1].tolist() == [1, 0, 1, 0] and mask[:, 1].tolist() == [1, 1, 1, 1]
