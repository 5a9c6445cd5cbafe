"""TFLite metadata: our writer and reader round-trip, the model runs, tflite-support agrees."""

import ctypes
import glob
import importlib
import importlib.util
import json
import os

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from tfcxr.backend import keras, tf
from tfcxr.errors import TfcxrError
from tfcxr.export.metadata import (ModelInfo, TensorInfo, add_metadata, packed_files,
                                   read_metadata, sigmoid_calibration_file)

LABELS = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
PIXELS = TensorInfo("pixels", "Chest X-ray, RGB.", image_size=(32, 32), normalization=(MEAN, STD),
                    value_range=(-2.1179, 2.64))
LOGITS = TensorInfo("logits", "One logit per finding.", label_file="labels.txt",
                    score_calibration_file="calibration.txt",
                    extra_files=(("thresholds.json", "Operating points per finding."),))
INFO = ModelInfo(name="cxr-tiny", version="0.1.0", description="Tiny test classifier.",
                 author="tfcxr tests", license="Apache-2.0", inputs=(PIXELS,), outputs=(LOGITS,))
FILES = {
    "labels.txt": ("\n".join(LABELS) + "\n").encode(),
    "calibration.txt": sigmoid_calibration_file(len(LABELS)),
    "thresholds.json": b'{"Atelectasis": 0.31}',
}


@pytest.fixture(scope="module")
def tflite_model() -> bytes:
    inputs = keras.Input((32, 32, 3), name="pixels")
    features = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    features = keras.layers.GlobalAveragePooling2D()(features)
    model = keras.Model(inputs, keras.layers.Dense(len(LABELS), name="logits")(features))
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


@pytest.fixture(scope="module")
def with_metadata(tflite_model) -> bytes:
    return add_metadata(tflite_model, INFO, FILES)


@pytest.fixture(scope="module")
def tooling():
    """tflite-support's metadata module, as CI installs it:
    ``pip install --no-deps tflite-support==0.4.4 libusb-package``.

    Its C extensions link libusb-1.0, which libusb-package ships; the library is loaded by path
    (``import libusb_package`` would need importlib-resources, not installed with --no-deps).
    """
    libusb = importlib.util.find_spec("libusb_package")
    if libusb is None or importlib.util.find_spec("tensorflow_lite_support") is None:
        pytest.skip("standard tooling not installed: "
                    "pip install --no-deps tflite-support==0.4.4 libusb-package")
    ctypes.CDLL(glob.glob(os.path.join(libusb.submodule_search_locations[0], "libusb*.so*"))[0],
                mode=ctypes.RTLD_GLOBAL)
    return importlib.import_module("tensorflow_lite_support.metadata.python.metadata")


def test_round_trip(with_metadata):
    assert read_metadata(with_metadata) == {
        "name": "cxr-tiny", "version": "0.1.0", "description": "Tiny test classifier.",
        "author": "tfcxr tests", "license": "Apache-2.0", "min_parser_version": "1.0.0",
        "inputs": [{
            "name": "pixels", "description": "Chest X-ray, RGB.", "image_size": [32, 32],
            "color_space": "RGB", "normalization": {"mean": list(MEAN), "std": list(STD)},
            "value_range": [-2.1179, 2.64], "associated_files": [], "score_calibration": None,
        }],
        "outputs": [{
            "name": "logits", "description": "One logit per finding.", "image_size": None,
            "color_space": None, "normalization": None, "value_range": None,
            "associated_files": [
                {"name": "labels.txt", "description": "Labels, one per line.",
                 "type": "TENSOR_AXIS_LABELS"},
                {"name": "calibration.txt",
                 "description": "Sigmoid calibration per label: scale,slope,offset.",
                 "type": "TENSOR_AXIS_SCORE_CALIBRATION"},
                {"name": "thresholds.json", "description": "Operating points per finding.",
                 "type": "UNKNOWN"},
            ],
            "score_calibration": {"score_transformation": "IDENTITY", "default_score": 0.0},
        }],
    }
    assert packed_files(with_metadata) == FILES
    json.dumps(read_metadata(with_metadata))


def _grayscale_info(height: int, width: int) -> ModelInfo:
    gray = TensorInfo("x", "gray", image_size=(height, width), color_space="GRAYSCALE")
    return ModelInfo("m", "1", "d", "a", "l", inputs=(gray,), outputs=(TensorInfo("y", "scores"),))


def test_grayscale_image_without_extras(tflite_model):
    model = add_metadata(tflite_model, _grayscale_info(32, 16), {})
    tensor = read_metadata(model)["inputs"][0]
    assert tensor["image_size"] == [32, 16]
    assert (tensor["color_space"], tensor["normalization"]) == ("GRAYSCALE", None)
    assert packed_files(model) == {}
    assert packed_files(tflite_model) == {}


def test_same_inputs_give_the_same_bytes(tflite_model, with_metadata):
    assert add_metadata(tflite_model, INFO, FILES) == with_metadata


def test_sigmoid_calibration_file():
    # One line per label and no trailing newline: the Task Library counts every "\n".
    assert sigmoid_calibration_file(3) == b"1.0,1.0,0.0\n1.0,1.0,0.0\n1.0,1.0,0.0"


def _run(model: bytes, x: np.ndarray) -> np.ndarray:
    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_model_still_runs_with_identical_outputs(tflite_model, with_metadata):
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype(np.float32)
    expected = _run(tflite_model, x)
    assert expected.shape == (1, len(LABELS))
    np.testing.assert_array_equal(_run(with_metadata, x), expected)


def test_standard_tooling_reads_it(tooling, with_metadata):
    from tensorflow_lite_support.metadata.cc.python import _pywrap_metadata_version

    displayer = tooling.MetadataDisplayer.with_model_buffer(with_metadata)
    metadata = json.loads(displayer.get_metadata_json())
    pixels, = metadata["subgraph_metadata"][0]["input_tensor_metadata"]
    logits, = metadata["subgraph_metadata"][0]["output_tensor_metadata"]
    assert (metadata["name"], pixels["name"], logits["name"]) == ("cxr-tiny", "pixels", "logits")
    assert pixels["content"]["content_properties"] == {
        "color_space": "RGB", "default_size": {"width": 32, "height": 32}}
    normalization, = pixels["process_units"]
    assert normalization["options_type"] == "NormalizationOptions"
    assert normalization["options"]["mean"] == pytest.approx(MEAN)
    assert normalization["options"]["std"] == pytest.approx(STD)
    assert pixels["stats"] == {"max": [pytest.approx(2.64)], "min": [pytest.approx(-2.1179)]}
    assert logits["process_units"] == [{"options_type": "ScoreCalibrationOptions", "options": {}}]
    assert [(f["name"], f.get("type")) for f in logits["associated_files"]] == [
        ("labels.txt", "TENSOR_AXIS_LABELS"), ("calibration.txt", "TENSOR_AXIS_SCORE_CALIBRATION"),
        ("thresholds.json", None)]  # UNKNOWN is the default, so it is not printed
    assert sorted(displayer.get_packed_associated_file_list()) == sorted(FILES)
    assert displayer.get_associated_file_buffer("labels.txt") == FILES["labels.txt"]
    assert _pywrap_metadata_version.GetMinimumMetadataParserVersion(
        displayer.get_metadata_buffer()) == metadata["min_parser_version"] == "1.0.0"


def test_standard_tooling_reads_grayscale_height_width(tooling, tflite_model):
    model = add_metadata(tflite_model, _grayscale_info(24, 40), {})
    metadata = json.loads(tooling.MetadataDisplayer.with_model_buffer(model).get_metadata_json())
    tensor, = metadata["subgraph_metadata"][0]["input_tensor_metadata"]
    assert tensor["content"]["content_properties"] == {
        "color_space": "GRAYSCALE", "default_size": {"width": 40, "height": 24}}


def _make(cls, **fields):
    obj = cls()
    for name, value in fields.items():
        setattr(obj, name, value)
    return obj


def _populator_metadata(tooling) -> bytes:
    """INFO written with the standard tooling's own object API."""
    import flatbuffers
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as fb

    def file(name, description, kind):
        return _make(fb.AssociatedFileT, name=name, description=description, type=kind)

    image = _make(fb.ImagePropertiesT, colorSpace=fb.ColorSpaceType.RGB,
                  defaultSize=_make(fb.ImageSizeT, width=32, height=32))
    pixels = _make(
        fb.TensorMetadataT, name=PIXELS.name, description=PIXELS.description,
        content=_make(fb.ContentT, contentPropertiesType=fb.ContentProperties.ImageProperties,
                      contentProperties=image),
        processUnits=[_make(fb.ProcessUnitT,
                            optionsType=fb.ProcessUnitOptions.NormalizationOptions,
                            options=_make(fb.NormalizationOptionsT, mean=list(MEAN),
                                          std=list(STD)))],
        stats=_make(fb.StatsT, max=[2.64], min=[-2.1179]))
    logits = _make(
        fb.TensorMetadataT, name=LOGITS.name, description=LOGITS.description,
        content=_make(fb.ContentT, contentPropertiesType=fb.ContentProperties.FeatureProperties,
                      contentProperties=fb.FeaturePropertiesT()),
        processUnits=[_make(fb.ProcessUnitT,
                            optionsType=fb.ProcessUnitOptions.ScoreCalibrationOptions,
                            options=_make(fb.ScoreCalibrationOptionsT,
                                          scoreTransformation=fb.ScoreTransformationType.IDENTITY,
                                          defaultScore=0.0))],
        associatedFiles=[
            file("labels.txt", "Labels, one per line.", fb.AssociatedFileType.TENSOR_AXIS_LABELS),
            file("calibration.txt", "Sigmoid calibration per label: scale,slope,offset.",
                 fb.AssociatedFileType.TENSOR_AXIS_SCORE_CALIBRATION),
            file("thresholds.json", "Operating points per finding.",
                 fb.AssociatedFileType.UNKNOWN)])
    metadata = _make(fb.ModelMetadataT, name=INFO.name, description=INFO.description,
                     version=INFO.version, author=INFO.author, license=INFO.license,
                     subgraphMetadata=[_make(fb.SubGraphMetadataT, inputTensorMetadata=[pixels],
                                             outputTensorMetadata=[logits])])
    builder = flatbuffers.Builder(0)
    builder.Finish(metadata.Pack(builder), tooling.MetadataPopulator.METADATA_FILE_IDENTIFIER)
    return bytes(builder.Output())


def test_standard_populator_writes_the_same_metadata(tooling, tflite_model, with_metadata):
    populator = tooling.MetadataPopulator.with_model_buffer(tflite_model)
    populator.load_metadata_buffer(_populator_metadata(tooling))
    populator.load_associated_file_buffers(FILES)
    populator.populate()
    standard = populator.get_model_buffer()

    def as_json(model):
        return json.loads(tooling.MetadataDisplayer.with_model_buffer(model).get_metadata_json())

    # The displayer's JSON includes the min_parser_version the populator computed.
    assert as_json(with_metadata) == as_json(standard)
    assert read_metadata(standard) == read_metadata(with_metadata)
    assert packed_files(standard) == packed_files(with_metadata)


@pytest.mark.parametrize("change, message", [
    (dict(outputs=(LOGITS, LOGITS)), "describes 2 outputs but the model has 1"),
    (dict(inputs=()), "describes 0 inputs but the model has 1"),
])
def test_tensor_count_must_match(tflite_model, change, message):
    info = ModelInfo(**{**INFO.__dict__, **change})
    with pytest.raises(TfcxrError, match=message):
        add_metadata(tflite_model, info, FILES)


def test_missing_file(tflite_model):
    with pytest.raises(TfcxrError, match=r"calibration\.txt, labels\.txt named in the metadata"):
        add_metadata(tflite_model, INFO, {"thresholds.json": b"{}"})


def test_metadata_added_twice(with_metadata):
    with pytest.raises(TfcxrError, match="already has TFLite metadata"):
        add_metadata(with_metadata, INFO, FILES)


def test_no_metadata(tflite_model):
    with pytest.raises(TfcxrError, match="has no TFLite metadata"):
        read_metadata(tflite_model)


def test_invalid_tensor_info():
    with pytest.raises(TfcxrError, match="color_space must be RGB or GRAYSCALE"):
        TensorInfo("x", "d", image_size=(8, 8), color_space="BGR")
    with pytest.raises(TfcxrError, match="score calibration needs a label_file"):
        TensorInfo("y", "d", score_calibration_file="calibration.txt")
