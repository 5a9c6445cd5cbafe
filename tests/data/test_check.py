import json

from click.testing import CliRunner
from cxr_files import write_text
from test_reader_nih import NAMES, make_nih

from tfcxr.cli import main
from tfcxr.data.check import check_dataset


def broken_nih(root):
    """One dataset with five different problems."""
    make_nih(root)
    (root / "images_001/images/00000002_000.png").unlink()  # missing image (row 3)
    png = root / "images_002/images/00000003_000.png"
    png.write_bytes(png.read_bytes()[:40])  # truncated image
    csv = root / "Data_Entry_2017.csv"
    csv.write_text(csv.read_text().replace("Mass|Nodule", "Mass|Nodul"))  # unknown label
    # patient 1's follow-up moved to the test list: a patient in two splits
    write_text(root / "train_val_list.txt", "\n".join(NAMES[:1] + NAMES[2:4]) + "\n")
    write_text(root / "test_list.txt", "\n".join(NAMES[4:] + NAMES[1:2]) + "\n")
    return root


def test_check_reports_every_problem_in_one_pass(tmp_path):
    report = check_dataset("nih", broken_nih(tmp_path))
    kinds = {p.kind for p in report.problems}
    assert {"missing-image", "bad-image", "unknown-label", "patient-leak"} <= kinds
    assert not report.usable
    bad_image = next(p for p in report.problems if p.kind == "bad-image")
    assert bad_image.path.endswith("00000003_000.png") and "truncated" in bad_image.message


def test_check_of_the_real_sample_is_clean(nih_sample):
    report = check_dataset("nih", nih_sample)
    assert report.usable, [str(p) for p in report.problems]
    assert report.images_decoded == 621
    summary = report.to_dict()
    assert summary["splits"] == {"test": 75, "train": 491, "val": 55}
    assert summary["patients"] == 621


def test_cli_check_json_and_exit_status(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(main, ["data", "check", "--dataset", "nih", "--root",
                               str(broken_nih(tmp_path / "bad")), "--json"])
    assert bad.exit_code == 1
    summary = json.loads(bad.output)
    assert summary["usable"] is False
    assert {p["kind"] for p in summary["problems"]} >= {"missing-image", "patient-leak"}

    good = runner.invoke(main, ["data", "check", "--dataset", "nih", "--root",
                                str(make_nih(tmp_path / "good")), "--json"])
    assert good.exit_code == 0, good.output
    summary = json.loads(good.output)
    assert summary["usable"] and summary["images"] == 6
    assert {r["label"] for r in summary["label_counts"]} >= {"Cardiomegaly", "Hernia"}


def test_cli_check_missing_csv_is_one_clear_line(tmp_path):
    result = CliRunner().invoke(main, ["data", "check", "--dataset", "chexpert", "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "train.csv: file not found" in result.output
    assert "Traceback" not in result.output


def test_cli_options_reach_the_reader(tmp_path):
    root = make_nih(tmp_path)
    result = CliRunner().invoke(main, ["data", "manifest", "--dataset", "nih", "--root", str(root),
                                       "-o", "labels=[Hernia, Mass]", "--out", str(tmp_path / "m.csv")])
    assert result.exit_code == 0, result.output
    header = (tmp_path / "m.csv").read_text().splitlines()[0]
    assert header.endswith("split,Hernia,Mass")


def test_cli_reader_error_has_no_traceback(tmp_path):
    root = broken_nih(tmp_path)
    result = CliRunner().invoke(main, ["data", "manifest", "--dataset", "nih", "--root", str(root),
                                       "--out", str(tmp_path / "m.csv")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "Data_Entry_2017.csv" in result.output
    assert not (tmp_path / "m.csv").exists()


def test_cli_missing_folder_and_unknown_dataset(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["data", "manifest", "--dataset", "nih", "--root",
                                  str(tmp_path / "nope"), "--out", str(tmp_path / "m.csv")])
    assert result.exit_code == 1 and "nope: dataset folder not found" in result.output
    result = runner.invoke(main, ["data", "check", "--dataset", "mimic", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "'mimic' is not one of" in result.output


def test_check_names_both_nih_csv_spellings_when_absent(tmp_path):
    report = check_dataset("nih", tmp_path)
    assert not report.usable
    assert "no Data_Entry_2017_v2020.csv or Data_Entry_2017.csv" in report.problems[0].message
