import os
from pathlib import Path

import pytest
import yaml

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


@pytest.fixture(scope="session")
def nih_run(nih_sample, tmp_path_factory):
    """A small real run to export: EEEA-Net-C2 distilled offline from the real CheXNet probabilities
    of the NIH sample, at 64 px for three epochs. Like any student trained on a few hundred films,
    its scores barely vary between films (logit spread ~0.1), so AUC deltas between two of its
    versions are dominated by reordering within that spread: the AUC gate is tested on arrays in
    test_parity.py, the files here on the probability gates of the float modes."""
    from cli_invoke import invoke

    base = tmp_path_factory.mktemp("export-run")
    config = {
        "seed": 0,
        "data": {"dataset": "nih", "root": str(nih_sample), "image_size": 64, "batch_size": 32,
                 "cache": True, "options": {"val_fraction": 0.1}},
        "student": {"name": "eeea_net_c2",
                    "train": {"epochs": 3, "learning_rate": 3e-3, "backup_every_steps": 100}},
        "distill": {"alpha": 0.5, "temperature": 2.0},
        "qat": {"epochs": 1, "learning_rate": 1e-5, "schedule": "constant"},
    }
    (base / "config.yaml").write_text(yaml.safe_dump(config))
    run = base / "run"
    invoke("distill", "--teacher-predictions", nih_sample / "chexnet_teacher_probs.csv",
           "--config", base / "config.yaml", "--out", run, "--quiet")
    return run


@pytest.fixture(scope="session")
def nih_exports_and_conversions(nih_run, tmp_path_factory):
    """Every export mode of ``nih_run`` (the results) and the converter's raw bytes per mode.

    dynamic and int8 are written with ``force``: a student this short-trained ranks films within
    a tiny spread, so their AUC gates are exercised on arrays instead (tests/export/test_parity.py).
    """
    from tfcxr.export import exporter

    out, raw = tmp_path_factory.mktemp("exports"), {}
    convert = exporter.convert

    def recording(model, spec, mode, *args, **kwargs):
        raw[mode] = convert(model, spec, mode, *args, **kwargs)
        return raw[mode]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(exporter, "convert", recording)
        results = {mode: exporter.export_tflite(nih_run, mode, out / mode, calibration_images=64,
                                                latency_runs=5, force=mode in ("dynamic", "int8"))
                   for mode in ("float32", "float16", "dynamic", "int8")}
    return results, raw


@pytest.fixture(scope="session")
def nih_exports(nih_exports_and_conversions):
    return nih_exports_and_conversions[0]
