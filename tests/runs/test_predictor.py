"""One predictor for every kind of model: a Keras network, its app model and its .tflite give
the same logits on the same real films, streamed in batches of any size."""

import numpy as np
import pytest

from tfcxr.backend import keras
from tfcxr.data.readers import read_dataset
from tfcxr.export.convert import convert
from tfcxr.export.modes import MODES
from tfcxr.metrics import sigmoid
from tfcxr.models.app_model import build_app_model
from tfcxr.preprocessing import PreprocessingSpec
from tfcxr.runs import predictor as predictor_module
from tfcxr.runs.layout import RunError
from tfcxr.runs.predictor import (KerasPredictor, TFLitePredictor, iter_pixel_batches, normalize,
                                  open_predictor, score_together)
from tfcxr.runs.tflite import TFLiteModel

SPEC = PreprocessingSpec(image_size=32)


@pytest.fixture(scope="module")
def films(nih_sample):
    """21 real NIH films (an odd count, so batches of 8 leave a remainder)."""
    manifest = read_dataset("nih", nih_sample)
    return manifest.select(np.arange(21))


@pytest.fixture(scope="module")
def network(films):
    """A small network with logits that vary between films (a fresh registry model's head
    starts near zero, which would make any comparison pass)."""
    keras.utils.set_random_seed(1)
    images = keras.Input(SPEC.input_shape)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(images)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(16, 3, activation="relu")(x))
    return keras.Model(images, keras.layers.Dense(films.num_classes, name="logits")(x))


@pytest.fixture(scope="module")
def predictors(network, films):
    labels = films.label_names
    out = {"keras": KerasPredictor(network, SPEC, labels),
           "app": KerasPredictor(build_app_model(network, SPEC), SPEC, labels)}
    for mode in ("float32", "float16"):
        out[mode] = TFLitePredictor(TFLiteModel(convert(network, SPEC, mode)), SPEC, labels)
    return out


def test_keras_app_model_and_tflite_give_the_same_logits(predictors, films):
    assert [predictors[k].kind for k in ("keras", "app", "float32")] == ["keras", "app", "tflite"]
    reference = predictors["keras"].score(films, batch_size=8)
    assert reference.shape == (21, films.num_classes) and reference.std() > 0.1
    np.testing.assert_allclose(predictors["app"].score(films, batch_size=8), reference,
                               atol=1e-4, rtol=1e-5)
    for mode in ("float32", "float16"):
        diff = np.abs(sigmoid(predictors[mode].score(films, batch_size=8)) - sigmoid(reference))
        assert diff.max() <= MODES[mode].tolerance.max_abs_prob, mode


def test_streaming_equals_the_whole_array_at_any_batch_size(predictors, network, films):
    (whole_pixels,) = list(iter_pixel_batches(films, SPEC, batch_size=len(films)))
    assert whole_pixels.dtype == np.uint8 and whole_pixels.shape == (21, 32, 32, 3)
    whole = network(normalize(whole_pixels, SPEC), training=False).numpy()
    for batch_size in (1, 8, 32):
        np.testing.assert_allclose(predictors["keras"].score(films, batch_size), whole,
                                   atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(predictors["float32"].score(films, batch_size),
                                   predictors["float32"].logits([whole_pixels]), atol=1e-5)


def test_scoring_holds_one_batch_at_a_time(predictors, films, monkeypatch):
    seen = []
    original = KerasPredictor.logits_of

    def recording(self, pixels):
        seen.append(len(pixels))
        return original(self, pixels)

    monkeypatch.setattr(KerasPredictor, "logits_of", recording)
    predictors["keras"].score(films, batch_size=8)
    assert seen == [8, 8, 5]


def test_score_together_decodes_the_films_once(predictors, films, monkeypatch):
    calls = []
    original = predictor_module.iter_pixel_batches

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(predictor_module, "iter_pixel_batches", counting)
    keras_logits, tflite_logits = score_together([predictors["keras"], predictors["float32"]],
                                                 films, batch_size=8)
    assert len(calls) == 1
    monkeypatch.setattr(predictor_module, "iter_pixel_batches", original)
    np.testing.assert_allclose(keras_logits, predictors["keras"].score(films), atol=1e-6)
    np.testing.assert_allclose(tflite_logits, predictors["float32"].score(films), atol=1e-6)


def test_open_predictor_outside_a_run_reads_the_files_beside_the_model(network, films, tmp_path):
    with pytest.raises(RunError, match="no labels.txt beside it"):
        network.save(tmp_path / "model.keras")
        open_predictor(tmp_path / "model.keras")
    (tmp_path / "labels.txt").write_text("\n".join(films.label_names) + "\n")
    caffe = PreprocessingSpec(32, mean=(0.4, 0.45, 0.5), std=(0.2, 0.2, 0.2))
    caffe.save(tmp_path / "preprocessing.json")
    model = open_predictor(tmp_path / "model.keras")
    assert model.kind == "keras" and model.spec == caffe and model.label_names == list(films.label_names)
    assert model.run is None and model.thresholds is None
    assert model.contract["input"]["mean"] == [0.4, 0.45, 0.5]
    (tmp_path / "model.tflite").write_bytes(convert(network, caffe, "float32"))
    tflite = open_predictor(tmp_path / "model.tflite")
    assert tflite.kind == "tflite" and "the model" in tflite.contract["input"]["normalised_by"]
    np.testing.assert_allclose(tflite.score(films), model.score(films), atol=1e-4)
    with pytest.raises(RunError, match="not a model file"):
        open_predictor(tmp_path / "labels.txt")
