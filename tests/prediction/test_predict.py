"""``tfcxr predict`` / ``tfcxr.predict`` on real NIH films and generated DICOMs.

The model is the session's small real run (``nih_run``: EEEA-Net-C2 distilled offline on the NIH
sample at 64 px) and its float32 export.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cli_invoke import invoke
from dicom_files import write_dicom

import tfcxr
from tfcxr.data.images import load_image
from tfcxr.errors import DatasetError
from tfcxr.evaluation.models import evaluation_films, operating_thresholds
from tfcxr.prediction import predict
from tfcxr.runs import open_predictor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def float32_export(nih_run, tmp_path_factory):
    from tfcxr.export.exporter import export_tflite

    out = tmp_path_factory.mktemp("predict-export")
    return export_tflite(nih_run, "float32", out / "student.tflite", latency_runs=2).tflite


@pytest.fixture(scope="module")
def test_films(nih_run):
    """The run's official test films, in the order ``tfcxr evaluate`` scores them."""
    return evaluation_films(open_predictor(nih_run), "test").manifest


def positives(probs, names, thresholds):
    return ["|".join(n for n, p in zip(names, row) if p >= thresholds[n]) for row in probs]


def test_scores_equal_evaluate_keras_and_tflite(nih_run, float32_export, test_films):
    """Every test film, in evaluate's order and batches: the same numbers, for both models."""
    results = {}
    for name, model in (("keras", nih_run), ("tflite", float32_export)):
        predictor = open_predictor(model, nih_run)
        evaluated = predictor.probabilities(test_films)  # what evaluate_model scores
        result = predict(model, test_films.paths, run=nih_run)
        assert list(result.table["path"]) == list(test_films.paths)
        np.testing.assert_array_equal(result.probabilities(), evaluated)
        thresholds = operating_thresholds(predictor)
        assert result.thresholds == thresholds
        assert list(result.table["positives"]) == positives(evaluated, predictor.label_names,
                                                            thresholds)
        results[name] = result
    keras, tflite = results["keras"], results["tflite"]
    # float32 TFLite is the Keras model to float tolerance (the export's parity gate: 1e-4)
    np.testing.assert_allclose(tflite.probabilities(), keras.probabilities(), rtol=0, atol=1e-4)
    assert "Youden" in keras.threshold_source
    assert tflite.threshold_source.endswith("thresholds.json")
    assert keras.model["kind"] == "keras" and tflite.model["mode"] == "float32"
    assert set(keras.table["input_size"]) == {64} and set(tflite.table["kind"]) == {"tflite"}
    # a handful in other batches: the same films score the same within float rounding
    few = predict(nih_run, test_films.paths[:5], batch_size=2)
    np.testing.assert_allclose(few.probabilities(), keras.probabilities()[:5], rtol=0, atol=1e-6)


def test_dicoms_score_like_the_png_they_hold(nih_run, test_films, tmp_path):
    """A real film stored as 16-bit MONOCHROME2 and as inverted MONOCHROME1 DICOM scores as
    the PNG; a window in the file changes the score unless --dicom-window off."""
    png = test_films.paths[0]
    grey = np.asarray(Image.open(png).convert("L"), np.uint16)
    mono2 = write_dicom(tmp_path / "mono2.dcm", grey * 257, bits_stored=16)
    mono1 = write_dicom(tmp_path / "mono1.dcm", (255 - grey) * 257, bits_stored=16,
                        photometric="MONOCHROME1")
    windowed = write_dicom(tmp_path / "windowed", grey * 257, bits_stored=16,  # no suffix
                           WindowCenter=128 * 257, WindowWidth=2)  # a window that binarises
    result = predict(nih_run, [png, mono2, mono1, windowed])
    probs = result.probabilities()
    np.testing.assert_allclose(probs[1], probs[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(probs[2], probs[0], rtol=0, atol=1e-6)
    # this short-trained student barely separates films, yet a binarised film moves it clearly
    assert np.abs(probs[3] - probs[0]).max() > 100 * np.abs(probs[1] - probs[0]).max()
    off = predict(nih_run, [windowed], dicom_window="off")
    np.testing.assert_allclose(off.probabilities()[0], probs[0], rtol=0, atol=1e-6)
    assert set(result.table["dicom_window"]) == {"auto"} and set(off.table["dicom_window"]) == {"off"}


def corrupt_but_complete_png(source, path):
    """A PNG whose signature and IEND are intact but whose compressed data is not: it passes
    the cheap check and only fails while the pipeline decodes it."""
    data = bytearray(Path(source).read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = b"\x00" * 64
    path.write_bytes(bytes(data))
    return path


def test_cli_skips_unreadable_films_and_exits_3(nih_run, test_films, tmp_path):
    films = tmp_path / "films"
    (films / "sub").mkdir(parents=True)
    good = [films / "a.png", films / "sub" / "b.png"]
    for link, source in zip(good, test_films.paths[:2]):
        os.symlink(source, link)
    (films / "truncated.png").write_bytes(open(test_films.paths[2], "rb").read()[:1000])
    (films / "page.jpg").write_bytes(b"<html>Not Found</html>")
    corrupt = corrupt_but_complete_png(test_films.paths[3], films / "corrupt.png")
    out, report = tmp_path / "out" / "p.csv", tmp_path / "out" / "p.json"
    result = invoke("predict", "--model", nih_run, films, "--recursive", "--out", out,
                    "--json", report, expect=3)
    table = pd.read_csv(out, keep_default_na=False)
    assert sorted(table["path"]) == sorted(map(str, good))
    for bad in ("truncated.png: truncated PNG", "page.jpg: not a PNG, JPEG or DICOM",
                f"{corrupt.name}: corrupt PNG"):
        assert bad in result.output
    everything = json.loads(report.read_text())
    assert {s["path"] for s in everything["skipped"]} == {
        str(films / "truncated.png"), str(films / "page.jpg"), str(corrupt)}
    assert everything["model"]["input"]["size"][0] == 64 and len(everything["films"]) == 2
    names = everything["model"]["labels"]
    assert list(table.columns[:len(names) + 2]) == ["path", *[f"prob_{n}" for n in names],
                                                    "positives"]
    # the same films without the bad ones: exit 0
    invoke("predict", "--model", nih_run, *good, "--out", tmp_path / "ok.csv", expect=0)


def test_nothing_half_written(nih_run, tmp_path):
    out = tmp_path / "p.csv"
    out.write_text("previous\n")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    result = invoke("predict", "--model", nih_run, tmp_path / "bad.png", "--out", out, expect=1)
    assert "none of the 1 film(s) could be read" in result.output
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "p.csv"]  # no temp file left
    result = invoke("predict", "--model", nih_run, tmp_path / "missing.png", "--out", out, expect=1)
    assert "missing.png: file or folder not found" in result.output
    with pytest.raises(DatasetError, match="pattern matches no file"):
        predict(nih_run, [str(tmp_path / "*.dcm")])


def test_gradcam_overlays_per_film_and_label(nih_run, float32_export, test_films, tmp_path):
    films = list(test_films.paths[:2])
    result = invoke("predict", "--model", nih_run, *films, "--out", tmp_path / "p.csv",
                    "--gradcam", "Effusion,Mass", "--gradcam-dir", tmp_path / "cam")
    figures = sorted(p.name for p in (tmp_path / "cam").glob("*.png"))
    stems = sorted(os.path.basename(f)[:-4] for f in films)
    assert figures == sorted(f"{s}_{label}.png" for s in stems for label in ("Effusion", "Mass"))
    assert "4 Grad-CAM overlay(s)" in result.output
    result = invoke("predict", "--model", float32_export, "--run", nih_run, films[0],
                    "--out", tmp_path / "t.csv", "--gradcam", "Mass", expect=1)
    assert "Grad-CAM overlays need a Keras model" in result.output


def test_help_and_top_level_api():
    text = invoke("predict", "--help").output
    for words in ("FILMS", "--gradcam", "--dicom-window", "Exit status", "3 some films"):
        assert words in text
    assert tfcxr.predict is predict
    code = ("import sys, tfcxr, tfcxr.data; "
            "assert 'tensorflow' not in sys.modules and 'tfcxr.prediction' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
