"""A model file that cannot be read is named, with what is wrong, never a traceback from inside
tf-keras or zipfile."""

import zipfile

import pytest

from tfcxr.backend import keras
from tfcxr.runs.layout import RunError
from tfcxr.runs.loading import load_keras_model, load_model


def test_a_file_that_is_no_keras_archive_is_named(tmp_path):
    broken = tmp_path / "best.keras"
    broken.write_bytes(b"not a zip archive")
    with pytest.raises(RunError, match=r"best\.keras: cannot load the model"):
        load_model(broken)


def test_an_archive_without_weights_or_with_an_unknown_class_is_named(tmp_path):
    saved = tmp_path / "whole.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(saved)
    partial = tmp_path / "half-written.keras"
    with zipfile.ZipFile(saved) as whole, zipfile.ZipFile(partial, "w") as archive:
        archive.writestr("config.json", whole.read("config.json"))  # and no model.weights.h5
    with pytest.raises(RunError, match=r"half-written\.keras: cannot load the model.*weights"):
        load_keras_model(partial)
    foreign = tmp_path / "foreign.keras"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("config.json", '{"class_name": "NoSuchModel", "config": {}}')
    with pytest.raises(RunError, match=r"foreign\.keras: cannot load the model.*NoSuchModel"):
        load_keras_model(foreign)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(RunError, match=r"nowhere\.keras: model not found"):
        load_keras_model(tmp_path / "nowhere.keras")
