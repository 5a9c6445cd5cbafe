"""Load a saved model of any kind, by what its path is, in one place.

``.keras``: a float network (or app model); ``.h5`` or a SavedModel folder: a QAT model
(``tfcxr qat`` saves them so, since ``.keras`` does not reload them); ``.tflite``: an exported
model, run through the LiteRT interpreter (``TFLiteModel``).
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

from tfcxr.backend import keras
from tfcxr.quantize import load_qat_model
from tfcxr.runs.layout import KERAS_SUFFIX, QAT_SUFFIX, RunError
from tfcxr.runs.tflite import TFLITE_SUFFIX, TFLiteModel

KERAS_CONFIG, KERAS_WEIGHTS = "config.json", "model.weights.h5"  # inside a .keras archive


def load_keras_model(path: str | Path) -> keras.Model:
    """A saved tfcxr model (``.keras``): custom layers are registered, no custom_objects needed.

    Read as ``keras.models.load_model(path, compile=False)`` reads it (the archive's config, then
    its weights file), except that the weights are first copied out of the archive: tf-keras
    hands h5py the zip member itself, and on Python 3.11 every backward seek in a zip member
    rereads it from its start, so loading took time quadratic in the weights' size (DenseNet161,
    109 MB: 62.9 s, against 6.1 s from the copy, the same weights under the same names).
    ``tests/models/test_zoo.py`` round-trips every registered model through this."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path}: model not found")
    try:
        with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as folder:
            config = json.loads(archive.read(KERAS_CONFIG))
            config["compile_config"] = None
            model = keras.saving.deserialize_keras_object(config)
            model.load_weights(archive.extract(KERAS_WEIGHTS, folder))
            return model
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
        raise RunError(f"{path}: cannot load the model: {e}") from None


def _load_qat(path: Path) -> keras.Model:
    try:
        return load_qat_model(path)
    except (OSError, ValueError) as e:
        raise RunError(f"{path}: cannot load the QAT model: {e}") from None


SUFFIX_KINDS = {KERAS_SUFFIX: "keras", QAT_SUFFIX: "qat", TFLITE_SUFFIX: "tflite"}
LOADERS = {"keras": load_keras_model, "qat": _load_qat, "tflite": TFLiteModel}


def model_kind(path: str | Path) -> str:
    """``"keras"``, ``"qat"`` or ``"tflite"``: which loader a path takes."""
    path = Path(path)
    if path.is_dir():
        return "qat"  # a SavedModel folder
    if path.suffix not in SUFFIX_KINDS:
        raise RunError(f"{path}: not a model file (expected {', '.join(SUFFIX_KINDS)} or a "
                       "SavedModel folder)")
    return SUFFIX_KINDS[path.suffix]


def load_model(path: str | Path) -> keras.Model | TFLiteModel:
    """The model saved at ``path``: a Keras model for ``.keras`` / ``.h5`` / SavedModel folders,
    a ``TFLiteModel`` for ``.tflite``."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path}: model not found")
    return LOADERS[model_kind(path)](path)
