"""notebooks/evaluate.ipynb runs headlessly on a real NIH-sample run and shows the report."""

from notebook_runner import run_notebook


def test_evaluate_notebook_runs_on_the_nih_sample(nih_run, copy_run, monkeypatch):
    run = copy_run(nih_run)  # the notebook writes its report into RUN/reports
    monkeypatch.setenv("TFCXR_MODEL", str(run))
    monkeypatch.setenv("TFCXR_BOOTSTRAP", "50")
    outputs = run_notebook("evaluate.ipynb")
    text = "".join(o.get("text", "") for o in outputs)
    assert "on 75 test films" in text and "mean AUC" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # ROC and calibration
    table = [o for o in outputs if "text/html" in o.get("data", {})]
    assert table and "Cardiomegaly" in table[0]["data"]["text/html"]
    assert (run / "reports" / "notebook" / "report.html").is_file()
