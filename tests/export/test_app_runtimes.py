"""Every exported mode, with and without the Grad-CAM output, through the runtimes Android apps
load a classifier with (MediaPipe Tasks and the TFLite Task Library ``ImageClassifier``): every
label comes back named, in order, scored sigmoid(tfcxr's logit). The files are those of
``phone_run`` (tests/conftest.py), a demo student whose every mode passes its parity gate, so
each file here is one the exporter writes without ``--force``; the films are its test films.

Which runtime takes which mode (the README's table):

| mode    | MediaPipe Tasks | Task Library (2023 runtime)                           |
|---------|-----------------|-------------------------------------------------------|
| float32 | yes             | yes                                                   |
| float16 | yes             | yes                                                   |
| dynamic | yes             | no: FULLY_CONNECTED version 12 is newer than its ops  |
| int8    | yes             | yes                                                   |

With ``--gradcam`` MediaPipe Tasks takes every mode (the findings are its first head); the Task
Library refuses every such file: it reads each output as a classification head and the maps
[1, L, h, w] are not one ("Unexpected WxH sizes for output index 1").
"""

import numpy as np
import pytest
from app_runtimes import RuntimeRefused, mediapipe_classify, task_library_classify

from tfcxr.export.exporter import export_tflite
from tfcxr.runs.predictor import iter_pixel_batches
from tfcxr.runs.tflite import TFLiteModel
from tfcxr.runs.trained import TrainedRun

MODES = ("float32", "float16", "dynamic", "int8")
FILMS = 6
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gradcam_exports(phone_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("gradcam-exports")
    return {mode: export_tflite(phone_run, mode, out / mode, gradcam=True, calibration_images=64,
                                latency_runs=3, gradcam_films=4)
            for mode in MODES}


@pytest.fixture(scope="module")
def films(phone_run):
    """The first test films as an app holds them: uint8 RGB at the model's input size."""
    run = TrainedRun.open(phone_run)
    test = run.split("test")
    return next(iter_pixel_batches(test.select(np.arange(FILMS)), run.spec, batch_size=FILMS))


def _tolerance(model: TFLiteModel) -> float:
    """float modes: 1e-5; int8: one quantisation step of its logits, as a probability
    (sigmoid's slope is at most 1/4, so a step of s moves it by at most s/4; we allow s)."""
    source = model.dequantized_from(model.logits_detail)
    return 1e-5 if source is None else float(source["quantization"][0])


def _check(results, model: TFLiteModel, films, labels):
    expected = 1.0 / (1.0 + np.exp(-model.logits(films).astype(np.float64)))
    assert len(results) == len(films)
    for row, probs in zip(results, expected):
        assert [name for name, _ in row] == labels
        np.testing.assert_allclose([score for _, score in row], probs, rtol=0,
                                   atol=_tolerance(model))


@pytest.mark.parametrize("gradcam", [False, True], ids=["logits", "with-gradcam"])
@pytest.mark.parametrize("mode", MODES)
def test_mediapipe_tasks_takes_every_mode(mode, gradcam, films, phone_run, request):
    result = request.getfixturevalue("gradcam_exports" if gradcam else "phone_exports")[mode]
    assert result.parity.passed
    model = TFLiteModel(result.tflite)
    assert model.output_names == (["logits", "gradcam"] if gradcam else ["logits"])
    labels = TrainedRun.open(phone_run).label_names
    _check(mediapipe_classify(result.tflite, films), model, films, labels)


@pytest.mark.parametrize("gradcam", [False, True], ids=["logits", "with-gradcam"])
@pytest.mark.parametrize("mode", MODES)
def test_task_library_takes_every_mode_but_dynamic(mode, gradcam, films, phone_run, tmp_path,
                                                   request):
    result = request.getfixturevalue("gradcam_exports" if gradcam else "phone_exports")[mode]
    if mode == "dynamic":  # refused first for its ops, with or without the maps
        with pytest.raises(RuntimeRefused, match="FULLY_CONNECTED.*version '12'"):
            task_library_classify(result.tflite, films, tmp_path)
        return
    if gradcam:
        with pytest.raises(RuntimeRefused, match="Unexpected WxH sizes for output index 1"):
            task_library_classify(result.tflite, films, tmp_path)
        return
    labels = TrainedRun.open(phone_run).label_names
    _check(task_library_classify(result.tflite, films, tmp_path), TFLiteModel(result.tflite),
           films, labels)
