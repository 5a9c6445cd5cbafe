"""A small real run to export: EEEA-Net-C2 distilled offline from the real CheXNet probabilities
of the NIH sample, at 64 px for three epochs. Like any student trained on a few hundred films,
its scores barely vary between films (logit spread ~0.1), so AUC deltas between two of its
versions are dominated by reordering within that spread: the AUC gate is tested on arrays in
test_parity.py, the files here on the probability gates of the float modes."""

import pytest
import yaml
from click.testing import CliRunner

from tfcxr.cli import main


def invoke(*args, expect: int = 0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert expect is None or result.exit_code == expect, result.output
    return result


@pytest.fixture(scope="session")
def nih_run(nih_sample, tmp_path_factory):
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
