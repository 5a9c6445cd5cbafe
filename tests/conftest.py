import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
NIH_SAMPLE = REPO.parent / "shared" / "data" / "nih-sample"


@pytest.fixture(scope="session")
def nih_sample() -> Path:
    """The real 621-image NIH ChestX-ray14 sample, read in place (never copied)."""
    if not (NIH_SAMPLE / "Data_Entry_2017_v2020.csv").is_file():
        pytest.skip(f"NIH sample not found at {NIH_SAMPLE}")
    return NIH_SAMPLE


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep the demo dataset cache out of the user's home during tests (shared per session)."""
    monkeypatch.setenv("TFCXR_CACHE", str(tmp_path_factory.getbasetemp() / "tfcxr-cache"))


@pytest.fixture(scope="session")
def assert_parity():
    """The export parity harness as a test helper: compare two models' logits on the same images
    with a mode's tolerances and fail the test with the harness's own report."""
    from tfcxr.export.parity import check_parity

    def check(keras_logits, tflite_logits, labels, mask, label_names, mode, **kwargs):
        report = check_parity(keras_logits, tflite_logits, labels, mask, label_names, mode, **kwargs)
        assert report.passed, report.summary()
        return report

    return check
