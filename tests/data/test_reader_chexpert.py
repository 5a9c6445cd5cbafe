import numpy as np
import pytest
from cxr_files import write_png, write_text

from tfcxr.data.labels import CHEXPERT_LABELS
from tfcxr.data.readers import read_dataset
from tfcxr.errors import DatasetError

HEADER = ("Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,"
          "Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,"
          "Pleural Effusion,Pleural Other,Fracture,Support Devices")
# Rows in CheXpert-v1.0-small's exact format: 1.0 / 0.0 / -1.0 / blank cells.
TRAIN_ROWS = [
    "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,1.0,,,,,,,,,0.0,,,,1.0",
    "CheXpert-v1.0-small/train/patient00002/study2/view1_frontal.jpg,Female,87,Frontal,AP,,,-1.0,1.0,,-1.0,-1.0,,-1.0,,-1.0,,1.0,",
    "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg,Female,83,Frontal,AP,,,,1.0,,,-1.0,,,,,,1.0,",
    "CheXpert-v1.0-small/train/patient00002/study1/view2_lateral.jpg,Female,83,Lateral,,,,,1.0,,,-1.0,,,,,,1.0,",
    "CheXpert-v1.0-small/train/patient00003/study1/view1_frontal.jpg,Male,41,Frontal,AP,,,,,,1.0,,,,0.0,,,,",
]
VALID_ROWS = [
    "CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg,Male,73,Frontal,AP,0.0,1.0,1.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
]


def make_chexpert(parent, train_rows=TRAIN_ROWS, valid_rows=VALID_ROWS):
    root = parent / "CheXpert-v1.0-small"
    write_text(root / "train.csv", "\n".join([HEADER, *train_rows]) + "\n")
    write_text(root / "valid.csv", "\n".join([HEADER, *valid_rows]) + "\n")
    for line in train_rows + valid_rows:
        path = line.split(",")[0]
        write_png(parent / path)  # a real JPEG: PIL picks the format from the suffix
    return root


def col(name):
    return CHEXPERT_LABELS.index(name)


def find(m, fragment):
    return int(np.flatnonzero([fragment in p for p in m.image_ids])[0])


def test_frontal_only_patients_from_paths_and_valid_as_test(tmp_path):
    m = read_dataset("chexpert", make_chexpert(tmp_path), val_fraction=0.0)
    assert len(m) == 5  # the lateral film is dropped
    assert set(m.views) == {"AP"}
    assert set(m.patient_ids) == {"patient00001", "patient00002", "patient00003", "patient64541"}
    assert m.splits[find(m, "valid/")] == "test"
    assert (m.splits[[not p.startswith("CheXpert-v1.0-small/valid") for p in m.image_ids]] == "train").all()
    assert m.label_names == CHEXPERT_LABELS


def test_lateral_films_kept_on_request(tmp_path):
    m = read_dataset("chexpert", make_chexpert(tmp_path), frontal_only=False)
    assert len(m) == 6 and "L" in set(m.views)


def test_ignore_policy_masks_uncertain_and_blank_is_negative(tmp_path):
    m = read_dataset("chexpert", make_chexpert(tmp_path), policy="ignore")
    r = find(m, "patient00002/study2")
    assert m.mask[r, col("Cardiomegaly")] == 0 and m.targets[r, col("Cardiomegaly")] == 0
    assert m.mask[r, col("Lung Opacity")] == 1 and m.targets[r, col("Lung Opacity")] == 1
    assert m.mask[r, col("Pneumothorax")] == 1 and m.targets[r, col("Pneumothorax")] == 0  # blank


@pytest.mark.parametrize("policy, edema, atelectasis, cardiomegaly", [
    ("zeros", 0, 0, 0),
    ("ones", 1, 1, 1),
    ("u-mixed", 1, 1, 0),  # U-Ones for Edema and Atelectasis, U-Zeros for the rest
    ({"default": "ignore", "per_label": {"Edema": "ones"}}, 1, None, None),
])
def test_uncertainty_policies(tmp_path, policy, edema, atelectasis, cardiomegaly):
    m = read_dataset("chexpert", make_chexpert(tmp_path), policy=policy)
    r = find(m, "patient00002/study2")
    for label, expected in [("Edema", edema), ("Atelectasis", atelectasis),
                            ("Cardiomegaly", cardiomegaly)]:
        if expected is None:
            assert m.mask[r, col(label)] == 0
        else:
            assert m.mask[r, col(label)] == 1 and m.targets[r, col(label)] == expected


def test_blank_can_be_masked_too(tmp_path):
    m = read_dataset("chexpert", make_chexpert(tmp_path), policy={"blank": "ignore"})
    r = find(m, "patient00001")
    assert m.mask[r, col("Pleural Effusion")] == 0  # blank
    assert m.mask[r, col("Pneumothorax")] == 1 and m.targets[r, col("Pneumothorax")] == 0  # 0.0


def test_root_may_be_the_parent_folder(tmp_path):
    root = make_chexpert(tmp_path)
    a = read_dataset("chexpert", root)
    assert all(p.startswith(str(root)) for p in a.paths)


def test_bad_label_value_names_file_column_and_row(tmp_path):
    rows = [TRAIN_ROWS[0].replace(",0.0,,,,1.0", ",2.0,,,,1.0"), *TRAIN_ROWS[1:]]
    root = make_chexpert(tmp_path, train_rows=rows)
    with pytest.raises(DatasetError, match=r"train\.csv.*'Pneumothorax'.*line 2: '2.0'"):
        read_dataset("chexpert", root)
    assert len(read_dataset("chexpert", root, skip_bad=True)) == 4


def test_path_escaping_the_root_is_refused(tmp_path):
    rows = [*TRAIN_ROWS, "CheXpert-v1.0-small/../../etc/passwd,Male,41,Frontal,AP,,,,,,1.0,,,,0.0,,,,"]
    root = make_chexpert(tmp_path, train_rows=TRAIN_ROWS)
    write_text(root / "train.csv", "\n".join([HEADER, *rows]) + "\n")
    with pytest.raises(DatasetError, match="outside the dataset root"):
        read_dataset("chexpert", root)


def test_unknown_policy_is_a_clear_error(tmp_path):
    from tfcxr.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown uncertainty policy 'maybe'"):
        read_dataset("chexpert", make_chexpert(tmp_path), policy="maybe")
