import base64
import json
import math
import re

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tfcxr.data.labels import CHEXPERT_LABELS
from tfcxr.evaluation import evaluate_arrays, read_report, write_report, youden_thresholds
from tfcxr.evaluation.render import to_markdown


def _strict_json(text):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


@pytest.fixture(scope="module")
def report(chexnet):
    return evaluate_arrays(chexnet.labels, chexnet.probs, None, chexnet.patient_ids,
                           chexnet.label_names, n_boot=200, model_name="CheXNet",
                           model_path="/models/chexnet.keras", data="NIH sample (621 images)")


def test_report_numbers(report, chexnet):
    assert (report.n_images, report.n_patients) == (621, 621)
    assert report.label_names == list(chexnet.label_names)
    for j, row in enumerate(report.rows):
        assert row.auc.estimate == pytest.approx(roc_auc_score(chexnet.labels[:, j],
                                                               chexnet.probs[:, j]))
        assert row.positives == chexnet.labels[:, j].sum()
        assert row.positives + row.negatives == 621
        assert row.threshold_method == "youden_j" and 0 < row.threshold < 1
        assert row.roc["fpr"][0] == 0 and row.roc["tpr"][-1] == 1
    assert report.mean_auc.low < report.mean_auc.estimate < report.mean_auc.high
    assert report.competition_auc is None  # NIH names
    assert any("optimistic" in note for note in report.notes)


def test_written_files(report, tmp_path):
    paths = write_report(report, tmp_path / "out")
    for name in ("report.json", "report.md", "report.html", "roc.png", "calibration.png"):
        assert (tmp_path / "out" / name).is_file(), name
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "calibration.png", "report.html", "report.json", "report.md", "roc.png"]  # no temp files
    for key in ("roc", "calibration"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page = paths["html"].read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [base64.b64decode(i) for i in images] == [paths["roc"].read_bytes(),
                                                      paths["calibration"].read_bytes()]
    assert "<style>" in page and not re.search(r'(src|href)="(?!data:)', page)
    table = page[page.index('<table id="labels">'):page.index("</table>")]
    for row in report.rows:
        assert f"<td>{row.label}</td>" in table
        assert f"{row.auc.estimate:.3f} ({row.auc.low:.3f}, {row.auc.high:.3f})" in table
    assert "<td>Mean</td>" in table

    markdown = paths["markdown"].read_text()
    table_lines = [line for line in markdown.splitlines() if line.startswith("|")]
    assert table_lines[0].startswith("| Label | AUC (95% CI) | Positives")
    assert len(table_lines) == 2 + 14 + 1
    assert "| Cardiomegaly | 0.920 (" in markdown

    data = _strict_json(paths["json"].read_text())
    assert data["model_name"] == "CheXNet" and len(data["rows"]) == 14
    again = read_report(tmp_path / "out")
    assert again.to_dict() == report.to_dict()
    assert again.row("Effusion").auc == report.row("Effusion").auc


def test_without_plots_there_are_no_images(report, tmp_path):
    paths = write_report(report, tmp_path, plots=False)
    assert set(paths) == {"markdown", "html", "json"}
    assert "data:image" not in paths["html"].read_text()
    assert not (tmp_path / "roc.png").exists()


def test_given_thresholds_and_a_label_without_positives(chexnet, tmp_path):
    labels = chexnet.labels.copy()
    labels[:, -1] = 0  # no Hernia at all in this data
    val = youden_thresholds(chexnet.labels[:300], chexnet.probs[:300], None, chexnet.label_names)
    report = evaluate_arrays(labels, chexnet.probs, None, chexnet.patient_ids,
                             chexnet.label_names, thresholds=val, n_boot=100)
    hernia = report.row("Hernia")
    assert math.isnan(hernia.auc.estimate) and hernia.positives == 0
    assert hernia.threshold == val["Hernia"]["threshold"]
    assert report.thresholds_source == "given"
    assert not any("optimistic" in note for note in report.notes)
    assert any("No AUC for Hernia" in note for note in report.notes)
    others = [r.auc.estimate for r in report.rows[:-1]]
    assert report.mean_auc.estimate == pytest.approx(np.mean(others))
    paths = write_report(report, tmp_path)
    data = _strict_json(paths["json"].read_text())
    assert data["rows"][-1]["auc"]["estimate"] is None
    assert "| Hernia | n/a |" in paths["markdown"].read_text()


def test_chexpert_five_reported_when_present():
    rng = np.random.default_rng(0)
    labels = (rng.random((400, 14)) < 0.3).astype(float)
    probs = np.clip(0.3 * labels + 0.7 * rng.random(labels.shape), 0, 1)
    report = evaluate_arrays(labels, probs, None, np.arange(400) // 4, CHEXPERT_LABELS,
                             n_boot=100)
    assert report.n_patients == 100
    assert report.competition_auc is not None
    assert report.competition_auc.low < report.competition_auc.estimate
    assert "| CheXpert competition mean AUC (5 labels) | " in to_markdown(report)
