"""``tfcxr explain`` on real NIH films of a real run, and the exported model's Grad-CAM output."""

import json
import shutil

import numpy as np
import pytest
from cli_invoke import invoke

from tfcxr import models
from tfcxr.backend import keras
from tfcxr.data.images import load_image
from tfcxr.data.pipeline import preprocess_image
from tfcxr.export.exporter import export_tflite
from tfcxr.export.metadata import read_metadata
from tfcxr.metrics import sigmoid
from tfcxr.runs.tflite import TFLiteModel
from tfcxr.runs.trained import TrainedRun


@pytest.fixture
def other_teacher(nih_run, tmp_path):
    """A teacher that is not the student: the run's files with another network (MobileNetV3-Small,
    seeded, same 14 labels and 64 px input) as its model."""
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    for name in ("run.json", "config.yaml", "manifest.csv", "preprocessing.json", "labels.txt"):
        shutil.copy(nih_run / name, teacher / name)
    info = json.loads((teacher / "run.json").read_text())
    (teacher / "run.json").write_text(json.dumps({**info, "model": "mobilenet_v3_small"}))
    keras.utils.set_random_seed(3)
    models.create("mobilenet_v3_small", num_classes=14, input_shape=(64, 64, 3)).save(
        teacher / "best.keras")
    return teacher


def _probabilities(model_path, film, run):
    spec = TrainedRun.open(run).spec
    model = keras.models.load_model(model_path)
    return sigmoid(model(preprocess_image(load_image(film), spec)[None]).numpy()[0])


def test_explain_draws_teacher_and_student_per_label(nih_run, nih_sample, other_teacher, tmp_path):
    film = sorted((nih_sample / "images").glob("*.png"))[0]
    out = tmp_path / "explained"
    result = invoke("explain", "--model", nih_run / "best.keras", "--teacher", other_teacher,
                    "--image", film, "--label", "Effusion,Cardiomegaly", "--out", out)
    assert "wrote 2 figure(s) for 1 film(s)" in result.output
    (entry,) = json.loads((out / "explanations.json").read_text())
    assert set(entry["figures"]) == {"Effusion", "Cardiomegaly"}
    # each panel's probability is its own model's, on this film
    names = TrainedRun.open(nih_run).label_names
    for role, model_path in (("student", nih_run / "best.keras"),
                             ("teacher", other_teacher / "best.keras")):
        expected = _probabilities(model_path, film, nih_run)
        got = entry["probabilities"][role]
        assert set(got) == {"Effusion", "Cardiomegaly"}
        for label, p in got.items():
            assert p == pytest.approx(expected[names.index(label)], abs=1e-5), (role, label)
    teacher, student = entry["probabilities"]["teacher"], entry["probabilities"]["student"]
    assert max(abs(teacher[k] - student[k]) for k in teacher) > 1e-3  # two models, two answers
    assert (out / f"{film.stem}_Effusion.png").read_bytes()[:4] == b"\x89PNG"


def test_explain_over_a_split_and_its_errors(nih_run, tmp_path):
    result = invoke("explain", "--model", nih_run, "--split", "test", "--limit", 2,
                    "--label", "Mass", "--out", tmp_path)
    assert "wrote 2 figure(s) for 2 film(s)" in result.output
    assert "give --image FILM" in invoke("explain", "--model", nih_run, expect=2).output
    bad = invoke("explain", "--model", nih_run, "--split", "test", "--label", "Nope",
                 "--out", tmp_path, expect=1).output
    assert "Nope" in bad and "Traceback" not in bad


def test_exported_gradcam_output_matches_keras_grad_cam(nih_run, tmp_path):
    result = export_tflite(nih_run, "float32", tmp_path, gradcam=True, latency_runs=5,
                           gradcam_films=8)
    model = TFLiteModel(result.tflite)
    assert model.output_names == ["logits", "gradcam"]
    cams = model.run(np.full((1, 64, 64, 3), 128, np.uint8))["gradcam"]
    assert cams.shape == (1, 14, 2, 2) and 0 <= cams.min() and cams.max() <= 1
    check = result.card["gradcam"]["vs_keras_grad_cam"]
    assert check["films"] == 8 and check["correlation_min"] >= 0.99, check
    outputs = read_metadata(result.tflite.read_bytes())["outputs"]
    assert [o["name"] for o in outputs] == ["logits", "gradcam"]
    assert result.parity.passed  # the logits are unchanged by the second output
