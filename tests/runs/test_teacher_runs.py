"""A teacher sees its own preprocessing, in online distillation and in QAT alike, and a run
finds its teacher from any working directory.

The teacher here is saved with Caffe preprocessing (resnet50's: BGR-order means in 0-255 units),
the student uses ImageNet mean/std: a teacher fed the student's normalisation gives other logits,
so the test can tell the two apart.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from cli_invoke import invoke
from tiny_runs import tiny_demo_config

from tfcxr.backend import keras
from tfcxr.data.pipeline import build_dataset
from tfcxr.distill.distiller import Distiller
from tfcxr.models import get_spec
from tfcxr.preprocessing import PreprocessingSpec
from tfcxr.runs import qat as qat_module
from tfcxr.runs import training as training_module
from tfcxr.runs.layout import resolve_path, store_path
from tfcxr.runs.trained import TrainedRun

SIZE = 32
TEACHER_SPEC = get_spec("resnet50").preprocessing.with_size(SIZE)
STUDENT_SPEC = get_spec("mobilenet_v3_small").preprocessing.with_size(SIZE)
PIXELS = PreprocessingSpec(SIZE, 3, (0.0,) * 3, (1 / 255,) * 3)  # what a QAT (app) model takes


def recording(monkeypatch, module) -> list:
    """Every Distiller ``module`` builds, kept for inspection."""
    built = []

    class Recording(Distiller):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(module, "Distiller", Recording)
    return built


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A demo dataset, a config, and a teacher saved with Caffe preprocessing beside it."""
    base = tmp_path_factory.mktemp("teacher-runs")
    tiny_demo_config(base, patients=30, seed=3, name="config.yaml",
                     student={"name": "mobilenet_v3_small", "train": {"epochs": 1}},
                     qat={"epochs": 1, "learning_rate": 1e-5, "schedule": "constant"})
    keras.utils.set_random_seed(0)
    images = keras.Input((SIZE, SIZE, 3))
    features = keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(8, 3, activation="relu")(images))
    teacher = keras.Model(images, keras.layers.Dense(6, name="logits")(features), name="teacher")
    (base / "teacher").mkdir()
    teacher.save(base / "teacher" / "best.keras")
    TEACHER_SPEC.save(base / "teacher" / "preprocessing.json")
    return base


def assert_teacher_sees_its_own_preprocessing(distiller, workdir, input_spec):
    run = TrainedRun.open(workdir / "runs" / "kd")
    films = run.split("val").select(np.arange(8))
    batch = lambda spec: next(iter(build_dataset(films, spec, training=False, batch_size=8)))[0]
    fed, own = batch(input_spec), batch(TEACHER_SPEC)
    teacher = keras.models.load_model(workdir / "teacher" / "best.keras")
    expected = teacher(own, training=False).numpy()
    misfed = teacher(fed, training=False).numpy()
    assert np.abs(misfed - expected).max() > 1e-2  # the two normalisations are told apart
    np.testing.assert_allclose(distiller.teacher(fed, training=False).numpy(), expected,
                               atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def online_run(workdir):
    """Online distillation started from ``workdir`` with a relative teacher path."""
    with pytest.MonkeyPatch.context() as patch:
        built = recording(patch, training_module)
        patch.chdir(workdir)
        invoke("distill", "--teacher-weights", "teacher/best.keras", "--config", "config.yaml",
               "--out", "runs/kd", "--quiet")
    return workdir / "runs" / "kd", built


@pytest.mark.slow
def test_online_distillation_feeds_the_teacher_its_own_preprocessing(online_run, workdir):
    run, built = online_run
    (distiller,) = built
    assert PreprocessingSpec.load(run / "preprocessing.json") == STUDENT_SPEC != TEACHER_SPEC
    stored = json.loads((run / "run.json").read_text())["teacher"]
    assert Path(stored) == (workdir / "teacher" / "best.keras").resolve()  # not cwd-relative
    assert_teacher_sees_its_own_preprocessing(distiller, workdir, STUDENT_SPEC)


@pytest.mark.slow
def test_qat_from_another_directory_finds_the_teacher(online_run, workdir, monkeypatch):
    run, _ = online_run
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    built = recording(monkeypatch, qat_module)
    invoke("qat", "--run", run, "--epochs", 1, "--quiet")
    info = json.loads((run / "qat" / "run.json").read_text())
    assert info["status"] == "complete" and info["mode"] == "online"
    (distiller,) = built
    assert_teacher_sees_its_own_preprocessing(distiller, workdir, PIXELS)


def test_recorded_paths_are_relative_to_the_run_inside_it_and_absolute_outside(tmp_path):
    run = tmp_path / "runs" / "kd"
    assert store_path(run / "teacher" / "best.keras", run) == "teacher/best.keras"
    outside = store_path(tmp_path / "probs.csv", run)
    assert Path(outside).is_absolute()
    moved = tmp_path / "moved"
    assert resolve_path("teacher/best.keras", moved) == moved.resolve() / "teacher" / "best.keras"
    assert resolve_path(outside, moved) == Path(outside)
