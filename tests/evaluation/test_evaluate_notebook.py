"""notebooks/evaluate.ipynb runs headlessly on a real NIH-sample run and shows the report."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "evaluate.ipynb"


def test_evaluate_notebook_runs_on_the_nih_sample(nih_run, monkeypatch):
    monkeypatch.setenv("TFCXR_MODEL", str(nih_run))
    monkeypatch.setenv("TFCXR_BOOTSTRAP", "50")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parents[1])}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    assert "on 75 test films" in text and "mean AUC" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # ROC and calibration
    table = [o for o in outputs if "text/html" in o.get("data", {})]
    assert table and "Cardiomegaly" in table[0]["data"]["text/html"]
    assert (nih_run / "reports" / "notebook" / "report.html").is_file()
