"""notebooks/explain.ipynb renders its Grad-CAM gallery headlessly on real NIH films."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explain.ipynb"


def test_explain_notebook_draws_a_gallery_of_real_films(nih_run, monkeypatch):
    monkeypatch.setenv("TFCXR_MODEL", str(nih_run / "best.keras"))
    monkeypatch.setenv("TFCXR_TEACHER", str(nih_run))
    monkeypatch.setenv("TFCXR_FILMS", "3")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parents[1])}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert "3 films with a finding" in "".join(o.get("text", "") for o in outputs)
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 1  # the gallery
