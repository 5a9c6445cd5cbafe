"""notebooks/explain.ipynb renders its Grad-CAM gallery headlessly on real NIH films."""

from notebook_runner import run_notebook


def test_explain_notebook_draws_a_gallery_of_real_films(nih_run, monkeypatch):
    monkeypatch.setenv("TFCXR_MODEL", str(nih_run / "best.keras"))
    monkeypatch.setenv("TFCXR_TEACHER", str(nih_run))
    monkeypatch.setenv("TFCXR_FILMS", "3")
    outputs = run_notebook("explain.ipynb")
    assert "3 films with a finding" in "".join(o.get("text", "") for o in outputs)
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 1  # the gallery
