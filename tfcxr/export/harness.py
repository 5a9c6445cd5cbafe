"""The parity harness from files: a Keras model and a .tflite, scored on the same films.

``run_parity`` is what ``tfcxr parity`` runs: it finds the run the Keras model came from (for the
data, labels and input contract), loads both models, infers the export mode from the .tflite's
tensors unless told, and returns the ``ParityReport`` of ``check_parity``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tfcxr.data.manifest import Manifest
from tfcxr.distill.run import RunError, load_model
from tfcxr.distill.trained_run import QAT_DIR, TrainedRun
from tfcxr.export.inputs import keras_logits, load_pixels
from tfcxr.export.parity import ParityReport, check_parity
from tfcxr.export.runtime import TFLiteModel
from tfcxr.quantize import load_qat_model


def load_keras(path: str | Path):
    """A ``.keras`` model, or an ``.h5`` / SavedModel (QAT models are saved so)."""
    path = Path(path)
    return load_model(path) if path.suffix == ".keras" else load_qat_model(path)


def owning_run(model_path: str | Path) -> Path:
    """The training run a model file belongs to (``RUN/best.keras``, ``RUN/qat/best.h5``)."""
    folder = Path(model_path).resolve().parent
    if folder.name == QAT_DIR and (folder.parent / "run.json").is_file():
        return folder.parent
    if (folder / "run.json").is_file():
        return folder
    raise RunError(f"{model_path}: not inside a tfcxr run directory; pass --run")


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


def saved_thresholds(tflite_path: Path) -> dict[str, float] | None:
    """The operating thresholds exported beside a .tflite, if any."""
    path = Path(tflite_path).parent / "thresholds.json"
    if not path.is_file():
        return None
    labels = json.loads(path.read_text()).get("labels", {})
    return {name: values["threshold"] for name, values in labels.items()}


def run_parity(keras_path: str | Path, tflite_path: str | Path, *, run: str | Path | None = None,
               split: str = "test", mode: str | None = None,
               manifest: Manifest | None = None) -> ParityReport:
    """Score both models on ``split`` of the run (or on ``manifest``) and compare them."""
    trained = TrainedRun.open(run or owning_run(keras_path))
    data = manifest if manifest is not None else trained.split(split)
    if list(data.label_names) != trained.label_names:
        raise RunError(f"the data's labels {list(data.label_names)} differ from the model's "
                       f"{trained.label_names}")
    tflite = TFLiteModel(tflite_path)
    if tflite.input_shape != trained.spec.input_shape:
        raise RunError(f"{tflite_path}: takes {tflite.input_shape}, the run's model "
                       f"{trained.spec.input_shape}")
    pixels = load_pixels(data, trained.spec)
    return check_parity(keras_logits(load_keras(keras_path), pixels, trained.spec),
                        tflite.logits(pixels), data.targets, data.mask, trained.label_names,
                        mode or infer_mode(tflite), saved_thresholds(Path(tflite_path)))
