"""One harness run over every registered model, so a model added to the zoo is checked for free.

Each model is built at 64 px with a 3-class head (every builder must honour the input shape it is
given: a builder that cannot build at 64 px fails here, it does not get a larger size) and must:
output finite logits of shape (batch, classes) from a linear head; expose
its Grad-CAM layer as a 4-D layer of the top-level graph (tf-explain needs a flat model); contain
no Lambda-style layers (tfmot cannot quantize them, .keras files cannot rebuild them safely); and
round-trip through ``model.save("m.keras")`` + ``tfcxr.runs.loading.load_keras_model`` with identical weights and outputs
and no ``custom_objects``. Teachers are large, so their cases are marked slow.
"""

import numpy as np
import pytest

from tfcxr import models
from tfcxr.backend import keras
from tfcxr.runs.loading import load_keras_model

SIZE = 64
NUM_CLASSES = 3
LAMBDA_LAYERS = {"Lambda", "TFOpLambda", "SlicingOpLambda"}


def _cases():
    for name in models.list_models():
        slow = [pytest.mark.slow] if models.get_spec(name).role == "teacher" else []
        yield pytest.param(name, marks=slow, id=name)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


@pytest.fixture(scope="module", params=list(_cases()))
def built(request):
    name = request.param
    spec = models.get_spec(name)
    model = models.create(name, num_classes=NUM_CLASSES, input_shape=(SIZE, SIZE, 3))
    x = np.random.default_rng(0).normal(size=(2, SIZE, SIZE, 3)).astype(np.float32)
    return spec, model, x


def test_outputs_finite_logits(built):
    spec, model, x = built
    assert model.input_shape == (None, SIZE, SIZE, 3)  # built at the size asked for
    logits = model(x, training=False).numpy()
    assert logits.shape == (2, NUM_CLASSES)
    assert np.isfinite(logits).all()
    assert model.layers[-1].get_config().get("activation", "linear") == "linear"


def test_gradcam_layer_is_a_4d_layer_of_the_top_level_graph(built):
    spec, model, _ = built
    assert spec.gradcam_layer, f"{spec.name} declares no Grad-CAM layer"
    assert len(model.get_layer(spec.gradcam_layer).output_shape) == 4


def test_has_no_lambda_layers(built):
    _, model, _ = built
    lambdas = [layer.name for layer in _all_layers(model) if type(layer).__name__ in LAMBDA_LAYERS]
    assert not lambdas


def test_keras_file_round_trip_without_custom_objects(built, tmp_path):
    _, model, x = built
    path = tmp_path / "m.keras"
    model.save(path)
    restored = load_keras_model(path)  # how every tfcxr command loads a .keras file
    if model.count_params() < 10_000_000:  # the same model keras.models.load_model rebuilds
        assert [w.name for w in restored.weights] == [
            w.name for w in keras.models.load_model(path, compile=False).weights]
    assert len(restored.weights) == len(model.weights)
    for saved, loaded in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(loaded, saved)
    np.testing.assert_allclose(restored(x, training=False).numpy(),
                               model(x, training=False).numpy(), rtol=1e-6, atol=1e-6)
