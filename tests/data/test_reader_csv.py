import numpy as np
import pytest
from cxr_files import write_png, write_text

from tfcxr.data.readers import read_dataset
from tfcxr.errors import DatasetError

CSV = """\
file,patient,Pneumonia,Effusion,split
films/a.png,h1,1,0,train
films/b.png,h1,-1,,train
films/c.png,h2,0,1,val
films/d.png,h3,,1,test
"""


def make_hospital(root, text=CSV):
    write_text(root / "labels.csv", text)
    for name in "abcd":
        write_png(root / "films" / f"{name}.png")
    return root


def test_hospital_export_reads_without_code(tmp_path):
    m = read_dataset("csv", make_hospital(tmp_path), image_column="file", patient_column="patient",
                     split_column="split", policy="ignore")
    assert m.label_names == ("Pneumonia", "Effusion")
    assert m.splits.tolist() == ["train", "train", "val", "test"]
    assert m.mask[1].tolist() == [0, 1]  # -1 ignored, blank -> 0 by default
    assert m.targets[0].tolist() == [1, 0] and m.targets[3].tolist() == [0, 1]
    assert m.paths[0] == str(tmp_path / "films/a.png")


def test_without_patient_or_split_columns(tmp_path):
    text = "\n".join(",".join(line.split(",")[i] for i in (0, 2, 3)) for line in CSV.splitlines())
    m = read_dataset("csv", make_hospital(tmp_path, text + "\n"), image_column="file", seed=0)
    assert set(m.splits) <= {"train", "val", "test"}
    assert any("each image is its own patient" in n for n in m.notes)


def test_patient_in_two_given_splits_is_refused(tmp_path):
    make_hospital(tmp_path, CSV.replace("films/c.png,h2", "films/c.png,h1"))
    with pytest.raises(DatasetError, match=r"1 patient\(s\) appear in more than one split.*h1 in train\+val"):
        read_dataset("csv", tmp_path, image_column="file", patient_column="patient",
                     split_column="split")


def test_wrong_image_column_lists_the_columns_found(tmp_path):
    make_hospital(tmp_path)
    with pytest.raises(DatasetError, match=r"labels\.csv: missing column\(s\) \['path'\].*'file'"):
        read_dataset("csv", tmp_path)


def test_absolute_and_parent_paths_escape_the_root(tmp_path):
    make_hospital(tmp_path, CSV + "/etc/passwd,h9,0,0,train\n../x.png,h8,0,0,train\n")
    with pytest.raises(DatasetError, match="outside the dataset root"):
        read_dataset("csv", tmp_path, image_column="file", patient_column="patient",
                     split_column="split")
    m = read_dataset("csv", tmp_path, image_column="file", patient_column="patient",
                     split_column="split", skip_bad=True)
    assert len(m) == 4 and np.isin(["films/a.png"], m.image_ids).all()
