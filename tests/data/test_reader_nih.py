import numpy as np
import pytest

from tfcxr.data.labels import NIH_LABELS
from tfcxr.data.readers import read_dataset
from tfcxr.errors import DatasetError

from cxr_files import write_png, write_text

# The original Data_Entry_2017.csv: 12 header fields (the bracketed names split on their commas,
# plus a trailing comma), zero-padded ids, ages like 058Y, a trailing comma on every row.
ORIGINAL_CSV = """\
Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],
00000001_000.png,Cardiomegaly,000,00000001,058Y,M,PA,2682,2749,0.143,0.143,
00000001_001.png,Cardiomegaly|Emphysema,001,00000001,058Y,M,PA,2894,2729,0.143,0.143,
00000002_000.png,No Finding,000,00000002,081Y,M,PA,2500,2048,0.171,0.171,
00000003_000.png,Hernia,000,00000003,074Y,F,PA,2500,2048,0.168,0.168,
00000004_000.png,Mass|Nodule,000,00000004,082Y,M,AP,2500,2048,0.168,0.168,
00000005_000.png,Pleural_Thickening|Effusion,000,00000005,069Y,F,PA,2048,2500,0.168,0.168,
"""

# The 2020 re-release: the same rows as plain integers, no trailing comma.
V2020_CSV = """\
Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]
00000001_000.png,Cardiomegaly,0,1,57,M,PA,2682,2749,0.143,0.143
00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143
00000002_000.png,No Finding,0,2,80,M,PA,2500,2048,0.171,0.171
00000003_000.png,Hernia,0,3,74,F,PA,2500,2048,0.168,0.168
00000004_000.png,Mass|Nodule,0,4,82,M,AP,2500,2048,0.168,0.168
00000005_000.png,Pleural_Thickening|Effusion,0,5,69,F,PA,2048,2500,0.168,0.168
"""

NAMES = ["00000001_000.png", "00000001_001.png", "00000002_000.png", "00000003_000.png",
         "00000004_000.png", "00000005_000.png"]


def make_nih(root, csv_name="Data_Entry_2017.csv", csv_text=ORIGINAL_CSV, layout="tarballs",
             split_lists=True):
    write_text(root / csv_name, csv_text)
    for i, name in enumerate(NAMES):
        folder = root / (f"images_{1 + i % 2:03d}/images" if layout == "tarballs" else "images")
        write_png(folder / name)
    if split_lists:
        write_text(root / "train_val_list.txt", "\n".join(NAMES[:4] + ["99999999_000.png"]) + "\n")
        write_text(root / "test_list.txt", "\n".join(NAMES[4:]) + "\n")
    return root


def row(manifest, name):
    return int(np.flatnonzero(manifest.image_ids == name)[0])


def test_original_csv_quirks_and_tarball_layout(tmp_path):
    m = read_dataset("nih", make_nih(tmp_path), val_fraction=0.0)
    assert len(m) == 6 and m.label_names == NIH_LABELS
    r = row(m, "00000001_001.png")
    assert m.targets[r, NIH_LABELS.index("Cardiomegaly")] == 1
    assert m.targets[r, NIH_LABELS.index("Emphysema")] == 1
    assert m.targets[r].sum() == 2
    assert m.targets[row(m, "00000002_000.png")].sum() == 0  # No Finding
    assert m.targets[row(m, "00000005_000.png"), NIH_LABELS.index("Pleural_Thickening")] == 1
    assert m.patient_ids[r] == "1"  # zero padding dropped so both CSV versions agree
    assert m.views[row(m, "00000004_000.png")] == "AP"
    assert "images_002" in m.paths[row(m, "00000001_001.png")]
    assert m.mask.all()


def test_v2020_csv_reads_the_same_as_the_original(tmp_path):
    original = read_dataset("nih", make_nih(tmp_path / "a"))
    v2020 = read_dataset("nih", make_nih(tmp_path / "b", "Data_Entry_2017_v2020.csv", V2020_CSV,
                                         layout="flat"))
    np.testing.assert_array_equal(original.image_ids, v2020.image_ids)
    np.testing.assert_array_equal(original.patient_ids, v2020.patient_ids)
    np.testing.assert_array_equal(original.targets, v2020.targets)
    np.testing.assert_array_equal(original.splits, v2020.splits)


def test_official_split_lists_and_patient_wise_validation(tmp_path):
    m = read_dataset("nih", make_nih(tmp_path), val_fraction=0.5, seed=3)
    test = set(m.image_ids[m.splits == "test"])
    assert test == set(NAMES[4:])
    assert set(m.splits) <= {"train", "val", "test"} and (m.splits == "val").any()
    assert not m.leaking_patients()
    # both films of patient 1 land in the same split
    assert len(set(m.splits[m.patient_ids == "1"])) == 1


def test_label_subset_keeps_order(tmp_path):
    m = read_dataset("nih", make_nih(tmp_path), labels=["Nodule", "Cardiomegaly"])
    assert m.label_names == ("Nodule", "Cardiomegaly")
    assert m.targets[row(m, "00000004_000.png")].tolist() == [1, 0]


def test_unknown_label_names_the_csv_and_the_label(tmp_path):
    make_nih(tmp_path)
    csv = tmp_path / "Data_Entry_2017.csv"
    csv.write_text(csv.read_text().replace("Hernia,000", "Hernai,000"))
    with pytest.raises(DatasetError, match=r"Data_Entry_2017\.csv.*unknown finding.*Hernai"):
        read_dataset("nih", tmp_path)
    m = read_dataset("nih", tmp_path, skip_bad=True)
    assert len(m) == 5 and any("skipped 1 row" in n for n in m.notes)


def test_missing_image_is_named_or_skipped_with_a_count(tmp_path):
    make_nih(tmp_path)
    (tmp_path / "images_002/images/00000001_001.png").unlink()
    with pytest.raises(DatasetError, match=r"not found.*00000001_001\.png"):
        read_dataset("nih", tmp_path)
    m = read_dataset("nih", tmp_path, skip_bad=True)
    assert "00000001_001.png" not in m.image_ids and len(m) == 5


def test_missing_column_names_the_file_and_column(tmp_path):
    make_nih(tmp_path, csv_text=ORIGINAL_CSV.replace("Finding Labels", "Findings"))
    with pytest.raises(DatasetError, match=r"Data_Entry_2017\.csv: missing column.*Finding Labels"):
        read_dataset("nih", tmp_path)


def test_image_in_both_split_lists_is_an_error(tmp_path):
    make_nih(tmp_path)
    with open(tmp_path / "test_list.txt", "a") as f:
        f.write(NAMES[0] + "\n")
    with pytest.raises(DatasetError, match="both train_val_list.txt and test_list.txt"):
        read_dataset("nih", tmp_path)


def test_without_split_lists_patients_are_split_at_random(tmp_path):
    m = read_dataset("nih", make_nih(tmp_path, split_lists=False), val_fraction=0.0)
    assert set(m.splits) <= {"train", "test"}
    assert not m.leaking_patients()
    assert any("official lists absent" in n for n in m.notes)


def test_real_nih_sample(nih_sample):
    m = read_dataset("nih", nih_sample)
    assert len(m) == 621
    assert (m.splits == "test").sum() == 75
    assert ((m.splits == "train") | (m.splits == "val")).sum() == 546
    assert not m.leaking_patients()
    csv = (nih_sample / "Data_Entry_2017_v2020.csv").read_text().splitlines()[1:]
    for j, label in enumerate(NIH_LABELS):
        expected = sum(label in line.split(",")[1].split("|") for line in csv)
        assert m.targets[:, j].sum() == expected, label
    assert (m.targets.sum(1) > 1).sum() == 233  # README: 233 images carry more than one finding
