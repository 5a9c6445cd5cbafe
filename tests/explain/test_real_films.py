"""Grad-CAM on real NIH films: valid maps per label, a QAT model explained with its own weights,
a written overlay."""

import numpy as np
import pytest

from tfcxr import models
from tfcxr.backend import keras
from tfcxr.data.images import load_image
from tfcxr.data.labels import NIH_LABELS
from tfcxr.data.pipeline import preprocess_image
from tfcxr.explain.gradcam import grad_cam
from tfcxr.explain.overlay import Panel, save_figure
from tfcxr.quantize import quantize_model


@pytest.fixture(scope="module")
def films(nih_sample):
    return [load_image(path) for path in sorted((nih_sample / "images").glob("*.png"))[:4]]


@pytest.fixture(scope="module")
def inputs(films, student):
    spec = models.get_spec("mobilenet_v3_small").preprocessing.with_size(student.input_shape[1])
    return np.stack([preprocess_image(film, spec) for film in films])


def test_maps_on_real_films_are_valid_and_differ_per_label(student, inputs):
    maps, logits = grad_cam(student, inputs, "all", label_names=NIH_LABELS, return_logits=True)
    assert maps.shape == (4, 14, 4, 4) and np.isfinite(maps).all()
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    peaks = maps.max(axis=(2, 3))
    assert np.all((peaks == 0) | np.isclose(peaks, 1.0))  # each map is scaled to its maximum
    hottest = maps.reshape(4, 14, -1).argmax(-1)
    assert all(len(set(spots)) > 1 for spots in hottest)  # labels do not all point at one spot
    assert np.isfinite(logits).all()
    effusion = grad_cam(student, inputs, "Effusion", label_names=NIH_LABELS, size=256)
    assert effusion.shape == (4, 1, 256, 256)
    # Bilinear samples fall between the 4x4 map's centres: the peak is approached, not exceeded.
    assert np.all(effusion.max(axis=(2, 3)) <= peaks[:, [2]] + 1e-6)
    assert np.all(effusion.max(axis=(2, 3)) >= 0.9 * peaks[:, [2]])


def test_qat_model_is_explained_with_its_own_weights(student, inputs, films, tmp_path):
    # A QAT copy whose weights have moved away from the float model's, as QAT fine-tuning moves
    # them (here: a new classifier kernel). Its Grad-CAM must be that of a float model holding
    # the QAT model's weights, not that of the float model it was made from.
    qat = quantize_model(student)  # its own copy: the session's models are shared read-only
    rng = np.random.default_rng(7)
    (kernel,) = [v for v in qat.get_layer("quant_logits").weights if v.name == "logits/kernel:0"]
    kernel.assign(rng.normal(0, 1 / np.sqrt(kernel.shape[0]), kernel.shape).astype(np.float32))
    expected = keras.models.clone_model(student)
    expected.set_weights(student.get_weights())
    expected.get_layer("logits").set_weights([kernel.numpy(),
                                              student.get_layer("logits").get_weights()[1]])
    qat_maps, logits = grad_cam(qat, inputs, [2, 7], size=256, return_logits=True)
    np.testing.assert_allclose(logits, expected(inputs).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(qat_maps, grad_cam(expected, inputs, [2, 7], size=256), atol=1e-6)
    float_maps = grad_cam(student, inputs, [2, 7], size=256)
    change = float(np.abs(qat_maps - float_maps).max())
    assert change > 0.2, change  # the new weights changed the explanation

    path = save_figure(tmp_path / "effusion.png", films[0], [
        Panel("float", float_maps[0, 0], "Effusion", 0.42),
        Panel("QAT (float twin)", qat_maps[0, 0], "Effusion", 0.41)], title="NIH film")
    written = load_image(path)
    assert written.shape[1] > written.shape[0] > 200  # three panels side by side
    assert [p.name for p in tmp_path.iterdir()] == ["effusion.png"]  # no temporary file left
