"""Model files to probabilities: the same path for a Keras model and an exported .tflite.

A model is scored on films of the run it came from (its rows, splits, labels and input
contract): ``RUN/best.keras`` and ``RUN/qat/best.h5`` belong to ``RUN``; an exported .tflite
names its run in the ``model_card.json`` beside it. Both see the same uint8 pixels
(``tfcxr.export.inputs``), so a Keras-vs-TFLite difference is the model's, not the loader's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfcxr.data.manifest import Manifest
from tfcxr.distill.run import RunError
from tfcxr.distill.trained_run import TrainedRun
from tfcxr.evaluation.operating_points import youden_thresholds
from tfcxr.export.harness import load_keras, owning_run, saved_thresholds
from tfcxr.export.inputs import keras_logits, load_pixels
from tfcxr.export.parity import sigmoid
from tfcxr.export.runtime import TFLiteModel


@dataclass
class ScoredModel:
    """A model file with the run it belongs to, able to score any manifest of that run's labels."""

    path: Path
    run: TrainedRun

    @classmethod
    def open(cls, path: str | Path, run: str | Path | None = None) -> "ScoredModel":
        path = Path(path)
        if not path.exists():
            raise RunError(f"{path}: model not found")
        if path.is_dir() and (path / "run.json").is_file():  # a run directory: its trained model
            trained = TrainedRun.open(path)
            return cls(trained.model_path, trained)
        return cls(path, TrainedRun.open(run or find_run(path)))

    @property
    def name(self) -> str:
        return self.path.stem if self.path.name not in ("best.keras", "best.h5") else \
            f"{self.run.path.name}/{self.path.name}"

    @property
    def is_tflite(self) -> bool:
        return self.path.suffix == ".tflite"

    def probabilities(self, manifest: Manifest) -> np.ndarray:
        if list(manifest.label_names) != self.run.label_names:
            raise RunError(f"{self.path}: predicts {self.run.label_names}, the data has "
                           f"{list(manifest.label_names)}")
        pixels = load_pixels(manifest, self.run.spec)
        if self.is_tflite:
            return sigmoid(TFLiteModel(self.path).logits(pixels))
        return sigmoid(keras_logits(load_keras(self.path), pixels, self.run.spec))

    def thresholds(self, split: str = "val") -> dict[str, float]:
        """Operating thresholds: those exported beside a .tflite, else Youden's J on ``split``."""
        if self.is_tflite and (saved := saved_thresholds(self.path)):
            return saved
        part = self.run.split(split)
        chosen = youden_thresholds(part.targets, self.probabilities(part), part.mask,
                                   self.run.label_names)
        return {name: values["threshold"] for name, values in chosen.items()}


def find_run(model_path: Path) -> Path:
    """The run of a model file: its folder (or parent for QAT), or for a .tflite its card's."""
    if model_path.suffix == ".tflite":
        card = model_path.parent / "model_card.json"
        if card.is_file():
            return Path(json.loads(card.read_text())["training"]["run"])
        raise RunError(f"{model_path}: no model_card.json beside it to find its run; pass --run")
    return owning_run(model_path)
