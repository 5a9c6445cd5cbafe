import numpy as np
import pytest
from cxr_files import write_text

from tfcxr.data.readers import read_dataset
from tfcxr.data.readers.padchest import parse_labels_cell
from tfcxr.errors import DatasetError

# The 160K CSV's layout: a leading unnamed index, 35 named columns, Labels as a list literal.
COLUMNS = ("ImageID,ImageDir,StudyDate_DICOM,StudyID,PatientID,PatientBirth,PatientSex_DICOM,"
           "ViewPosition_DICOM,Projection,MethodProjection,Pediatric,Modality_DICOM,"
           "Manufacturer_DICOM,PhotometricInterpretation_DICOM,PixelRepresentation_DICOM,"
           "PixelAspectRatio_DICOM,SpatialResolution_DICOM,BitsStored_DICOM,WindowCenter_DICOM,"
           "WindowWidth_DICOM,Rows_DICOM,Columns_DICOM,XRayTubeCurrent_DICOM,Exposure_DICOM,"
           "ExposureInuAs_DICOM,ExposureTime,RelativeXRayExposure_DICOM,ReportID,Report,"
           "MethodLabel,Labels,Localizations,LabelsLocalizationsBySentence,labelCUIS,"
           "LocalizationsCUIS").split(",")


def padchest_row(index, image_id, image_dir, patient, projection, labels):
    values = {c: "" for c in COLUMNS}
    values.update(ImageID=image_id, ImageDir=str(image_dir), PatientID=patient,
                  Projection=projection, Labels=labels, BitsStored_DICOM="12",
                  Report="informe", MethodLabel="Physician")
    cells = [str(index)] + [f'"{values[c]}"' if "," in values[c] else values[c] for c in COLUMNS]
    return ",".join(cells)


ROWS = [
    ("img_a.png", 0, "p1", "PA", "['pleural effusion', 'cardiomegaly']"),
    ("img_b.png", 0, "p1", "L", "['normal']"),
    ("img_c.png", 1, "p2", "AP_horizontal", "['laminar atelectasis', ' pseudonodule']"),
    ("img_d.png", 1, "p3", "PA", "['normal']"),
    ("img_e.png", 2, "p4", "PA", ""),
    ("img_f.png", 2, "p5", "PA", "['exclude']"),
    ("img_g.png", 3, "p6", "AP", "['suboptimal study']"),
    ("img_h.png", 3, "p7", "PA", "['multiple nodules', 'hiatal hernia']"),
]


def write_16bit_png(path, value=40000):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint16)).save(path)


def make_padchest(root, rows=ROWS):
    lines = ["," + ",".join(COLUMNS)] + [padchest_row(i, *r) for i, r in enumerate(rows)]
    write_text(root / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv", "\n".join(lines) + "\n")
    for image_id, image_dir, *_ in rows:
        write_16bit_png(root / str(image_dir) / image_id)
    return root


def test_labels_cells_parse_as_list_literals():
    assert parse_labels_cell("['pleural effusion', ' cardiomegaly']") == ["pleural effusion", "cardiomegaly"]
    assert parse_labels_cell("") is None and parse_labels_cell("nan") is None
    with pytest.raises(ValueError):
        parse_labels_cell("pleural effusion")


def test_default_labels_views_and_exclusions(tmp_path):
    m = read_dataset("padchest", make_padchest(tmp_path), fractions={"train": 1.0})
    ids = list(m.image_ids)
    # lateral dropped by the view filter; NaN, exclude and suboptimal rows left out
    assert sorted(ids) == ["img_a.png", "img_c.png", "img_d.png", "img_h.png"]
    assert len(m.label_names) == 14 and m.label_names[0] == "Atelectasis"

    def positives(image_id):
        return {m.label_names[j] for j in np.flatnonzero(m.targets[ids.index(image_id)])}

    assert positives("img_a.png") == {"Effusion", "Cardiomegaly"}
    assert positives("img_c.png") == {"Atelectasis"}  # 'pseudonodule' is not a nodule
    assert positives("img_d.png") == set()
    assert positives("img_h.png") == {"Nodule", "Hernia"}
    assert m.views[ids.index("img_c.png")] == "AP_horizontal"
    assert any("1 rows without labels and 2 marked exclude" in n for n in m.notes)


def test_custom_label_subset(tmp_path):
    m = read_dataset("padchest", make_padchest(tmp_path),
                     labels={"Effusion": ["pleural effusion"], "Normal": "normal"})
    assert m.label_names == ("Effusion", "Normal")
    assert m.targets[list(m.image_ids).index("img_d.png")].tolist() == [0, 1]


def test_patient_wise_split_is_deterministic_and_disjoint(tmp_path):
    root = make_padchest(tmp_path)
    a = read_dataset("padchest", root, seed=1, views=None)
    b = read_dataset("padchest", root, seed=1, views=None)
    np.testing.assert_array_equal(a.splits, b.splits)
    assert not a.leaking_patients()
    assert len(set(a.splits[a.patient_ids == "p1"])) == 1


def test_malformed_labels_cell_names_the_row(tmp_path):
    rows = [*ROWS[:4], ("img_x.png", 0, "p9", "PA", "pleural effusion")]
    with pytest.raises(DatasetError, match=r"not a list literal.*line 6"):
        read_dataset("padchest", make_padchest(tmp_path, rows))


def test_missing_image_names_imagedir_and_id(tmp_path):
    root = make_padchest(tmp_path)
    (root / "1" / "img_c.png").unlink()
    with pytest.raises(DatasetError, match=r"not found at ImageDir/ImageID.*1/img_c\.png"):
        read_dataset("padchest", root)


def test_flat_image_folder_is_accepted(tmp_path):
    root = make_padchest(tmp_path)
    for image_id, image_dir, *_ in ROWS:
        (root / str(image_dir) / image_id).rename(root / image_id)
    m = read_dataset("padchest", root)
    assert all((root / i).as_posix() == p for i, p in zip(m.image_ids, m.paths))
