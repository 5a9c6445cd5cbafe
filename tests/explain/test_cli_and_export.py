"""``tfcxr explain`` on real NIH films of a real run, and the exported model's Grad-CAM output."""

import json

import numpy as np
from cli_invoke import invoke

from tfcxr.export.exporter import export_tflite
from tfcxr.export.metadata import read_metadata
from tfcxr.runs.tflite import TFLiteModel


def test_explain_draws_teacher_and_student_per_label(nih_run, nih_sample, tmp_path):
    film = sorted((nih_sample / "images").glob("*.png"))[0]
    out = tmp_path / "explained"
    result = invoke("explain", "--model", nih_run / "best.keras", "--teacher", nih_run,
                    "--image", film, "--label", "Effusion,Cardiomegaly", "--out", out)
    assert "wrote 2 figure(s) for 1 film(s)" in result.output
    (entry,) = json.loads((out / "explanations.json").read_text())
    assert set(entry["figures"]) == {"Effusion", "Cardiomegaly"}
    assert set(entry["probabilities"]) == {"teacher", "student"}
    assert all(0 < p < 1 for p in entry["probabilities"]["student"].values())
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
