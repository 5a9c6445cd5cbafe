"""Execute a notebook of ``notebooks/`` headlessly (nbclient) and return its code cells' outputs."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(name: str) -> list:
    """Run ``notebooks/<name>`` from the repository root, as a user would; environment variables
    set by the caller (monkeypatch.setenv) reach the kernel."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS.parent)}}).execute()
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
