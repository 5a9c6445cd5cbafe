"""The converter traces the app model once (``tflite_converter``) instead of going through
``TFLiteConverter.from_keras_model``'s Keras SavedModel: the file must be the same model, the
same signature and the same numbers, in float and in int8, with and without the Grad-CAM output."""

import numpy as np
import pytest

from tfcxr.backend import keras, tf
from tfcxr.export.convert import convert, representative_dataset, to_app_model, with_named_outputs
from tfcxr.export.modes import get_mode
from tfcxr.models import create
from tfcxr.preprocessing import PreprocessingSpec
from tfcxr.runs.tflite import TFLiteModel

SIZE = 32


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).integers(0, 256, (6, SIZE, SIZE, 3)).astype(np.uint8)


def _through_keras_saved_model(network, name, spec, mode, pixels, gradcam):
    """What the converter did before: from_keras_model (writes and reloads a Keras SavedModel)."""
    export_mode = get_mode(mode)
    app = with_named_outputs(to_app_model(network, spec, export_mode.integer_io, gradcam, name))
    converter = tf.lite.TFLiteConverter.from_keras_model(app)
    export_mode.configure(converter, representative_dataset(pixels) if export_mode.integer_io else None)
    return converter.convert()


@pytest.mark.parametrize("name,mode,gradcam", [("mobilenet_v3_small", "float32", False),
                                               ("mobilenet_v3_small", "int8", True)])
def test_traced_once_equals_the_keras_saved_model_path(name, mode, gradcam, pixels):
    keras.utils.set_random_seed(0)
    network = create(name, num_classes=3, input_shape=(SIZE, SIZE, 3))
    spec = PreprocessingSpec(image_size=SIZE)
    traced = TFLiteModel(convert(network, spec, mode, pixels, gradcam=gradcam,
                                 model_name=name))
    reference = TFLiteModel(_through_keras_saved_model(network, name, spec, mode, pixels, gradcam))
    assert traced.output_names == reference.output_names == (["logits", "gradcam"] if gradcam
                                                             else ["logits"])
    assert traced.interpreter.get_signature_list() == reference.interpreter.get_signature_list()
    for mine, theirs in zip(traced.interpreter.get_input_details() + traced.interpreter.get_output_details(),
                            reference.interpreter.get_input_details() + reference.interpreter.get_output_details()):
        assert (mine["dtype"], tuple(mine["shape"]), mine["quantization"]) == \
               (theirs["dtype"], tuple(theirs["shape"]), theirs["quantization"])
    np.testing.assert_array_equal(traced.logits(pixels), reference.logits(pixels))
