"""The parity harness from files: a Keras model and a .tflite, scored on the same films.

``run_parity`` is what ``tfcxr parity`` runs: it finds the run the Keras model came from (for the
data, labels and input contract), opens both models as predictors, streams the same pixel batches
through both, infers the export mode from the .tflite's tensors unless told, and returns the
``ParityReport`` of ``check_parity``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfcxr.data.manifest import Manifest
from tfcxr.export.parity import ParityReport, check_parity
from tfcxr.runs.layout import RunError
from tfcxr.runs.predictor import TFLitePredictor, open_predictor, score_together
from tfcxr.runs.tflite import TFLiteModel


def infer_mode(model: TFLiteModel) -> str:
    """The export mode a .tflite was made in, from its tensor types."""
    if np.issubdtype(model.input_dtype, np.integer):
        return "int8"
    dtypes = {np.dtype(t["dtype"]) for t in model.interpreter.get_tensor_details()}
    if np.dtype(np.float16) in dtypes:
        return "float16"
    if np.dtype(np.int8) in dtypes:
        return "dynamic"
    return "float32"


def run_parity(keras_path: str | Path, tflite_path: str | Path, *, run: str | Path | None = None,
               split: str = "test", mode: str | None = None,
               manifest: Manifest | None = None) -> ParityReport:
    """Score both models on ``split`` of the run (or on ``manifest``) and compare them."""
    keras_model = open_predictor(keras_path, run)
    if keras_model.run is None:
        raise RunError(f"{keras_path}: not inside a tfcxr run directory; pass --run")
    trained = keras_model.run
    tflite = open_predictor(tflite_path, trained)
    if not isinstance(tflite, TFLitePredictor):
        raise RunError(f"{tflite_path}: not a .tflite model")
    data = manifest if manifest is not None else trained.split(split)
    keras_model.require_labels(data)
    keras_logits, tflite_logits = score_together([keras_model, tflite], data)
    return check_parity(keras_logits, tflite_logits, data.targets, data.mask, trained.label_names,
                        mode or infer_mode(tflite.model), tflite.thresholds)
