"""One way to score films with any tfcxr model: a Keras network, an app model, a QAT model or an
exported .tflite, streaming.

Every model sees the same uint8 pixels, decoded and resized by the training pipeline and rounded
as an app copies them from a bitmap (``iter_pixel_batches``), so a Keras-vs-TFLite difference is
the model's, not the loader's. A network gets them normalised with its run's spec; an app model,
a QAT model and a .tflite take the pixels and normalise them themselves. Films flow one batch at a
time and only the logits are kept, so memory does not grow with the number of films.

``open_predictor`` opens a run directory or a model file with the run it belongs to (its labels,
input contract and splits): ``RUN/best.keras`` and ``RUN/qat/best.h5`` belong to ``RUN``; an
exported .tflite names its run in the ``model_card.json`` beside it. A model outside any run needs
a ``labels.txt`` beside it (and ``preprocessing.json`` for a network, else ImageNet defaults).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from tfcxr.backend import keras
from tfcxr.data.manifest import Manifest
from tfcxr.data.pipeline import build_dataset
from tfcxr.metrics import sigmoid
from tfcxr.models.app_model import PIXEL_RANGE, is_app_model, pixel_spec
from tfcxr.preprocessing import PreprocessingSpec
from tfcxr.quantize import is_qat_model
from tfcxr.runs.layout import LABELS, RUN_INFO, RunError, model_preprocessing, owning_run
from tfcxr.runs.loading import load_model, model_kind
from tfcxr.runs.tflite import TFLiteModel
from tfcxr.runs.trained import TrainedRun

BATCH_SIZE = 32
THRESHOLDS = "thresholds.json"
MODEL_CARD = "model_card.json"
Progress = Callable[[Iterable[np.ndarray]], Iterable[np.ndarray]]


def iter_pixel_batches(manifest: Manifest, spec: PreprocessingSpec,
                       batch_size: int = BATCH_SIZE) -> Iterator[np.ndarray]:
    """[B, S, S, C] uint8 pixel batches of ``manifest``'s films, in row order: the pipeline's
    decode and resize at ``spec``'s size, rounded to the values an app holds."""
    ds = build_dataset(manifest, pixel_spec(spec), training=False, batch_size=batch_size)
    for images, _, _ in ds:
        yield np.clip(np.round(images.numpy()), *PIXEL_RANGE).astype(np.uint8)


def normalize(pixels: np.ndarray, spec: PreprocessingSpec) -> np.ndarray:
    """Pixels in [0, 255] to the normalised input of a network trained with ``spec``."""
    images = np.asarray(pixels, np.float32) / PIXEL_RANGE[1]
    return ((images - np.float32(spec.mean)) / np.float32(spec.std)).astype(np.float32)


class Predictor:
    """Logits of one model for pixel batches or for a manifest's films.

    ``spec``: the input contract the pixels are made with (size, channels, resize) and, for a
    network, normalised with. ``thresholds``: operating thresholds saved with the model (an
    export's ``thresholds.json``), or None."""

    kind = "model"

    def __init__(self, spec: PreprocessingSpec, label_names: Sequence[str], *,
                 path: Path | None = None, run: TrainedRun | None = None,
                 thresholds: dict[str, float] | None = None):
        self.spec, self.label_names = spec, list(label_names)
        self.path, self.run, self.thresholds = path, run, thresholds

    @property
    def name(self) -> str:
        if self.path is None:
            return self.kind
        if self.run is not None and self.path.name.startswith("best."):
            return f"{self.run.path.name}/{self.path.name}"
        return self.path.stem

    def logits_of(self, pixels: np.ndarray) -> np.ndarray:
        """[B, C] float32 logits of one [B, S, S, C] batch of pixels in [0, 255]."""
        raise NotImplementedError

    def logits(self, batches: Iterable[np.ndarray]) -> np.ndarray:
        """[N, C] logits of every batch, in order."""
        out = [self.logits_of(batch) for batch in batches]
        return np.concatenate(out) if out else np.zeros((0, len(self.label_names)), np.float32)

    def score(self, manifest: Manifest, batch_size: int = BATCH_SIZE,
              progress: Progress = iter) -> np.ndarray:
        """[N, C] logits of ``manifest``'s films, streamed ``batch_size`` films at a time."""
        return self.logits(progress(iter_pixel_batches(manifest, self.spec, batch_size)))

    def probabilities(self, manifest: Manifest, batch_size: int = BATCH_SIZE,
                      progress: Progress = iter) -> np.ndarray:
        return sigmoid(self.score(manifest, batch_size, progress))

    def require_labels(self, manifest: Manifest) -> None:
        """Fail clearly when ``manifest``'s labels are not the model's (in order)."""
        if list(manifest.label_names) != self.label_names:
            raise RunError(f"{self.path or self.name}: predicts {self.label_names}, the data has "
                           f"{list(manifest.label_names)}")

    @property
    def takes_pixels(self) -> bool:
        return True

    @property
    def contract(self) -> dict:
        """What goes in and comes out, for a report or a predictions file."""
        spec = self.spec
        inside = "the model: (pixels / 255 - mean) / std" if self.takes_pixels else \
            "the caller: (pixels / 255 - mean) / std"
        contract = {"model": self.name, "kind": self.kind,
                    "file": str(self.path) if self.path else None,
                    "run": str(self.run.path) if self.run else None,
                    "input": {"pixels": "RGB 0-255, grayscale replicated",
                              "size": [spec.image_size, spec.image_size, spec.channels],
                              "resize": f"{spec.resize_method} (antialiased)",
                              "normalised_by": inside},
                    "output": "logits; probability = sigmoid(logit)",
                    "labels": self.label_names}
        if not self.takes_pixels:
            contract["input"].update(mean=list(spec.mean), std=list(spec.std))
        return contract


class KerasPredictor(Predictor):
    """A Keras network (fed ``spec``-normalised images), app model or QAT model (fed pixels)."""

    def __init__(self, model: keras.Model, spec: PreprocessingSpec, label_names, **kwargs):
        super().__init__(spec, label_names, **kwargs)
        self.model = model
        self.kind = "qat" if is_qat_model(model) else "app" if is_app_model(model) else "keras"
        if tuple(model.input_shape[1:]) != spec.input_shape:
            raise RunError(f"{self.path or model.name}: takes {tuple(model.input_shape[1:])}, "
                           f"its preprocessing says {spec.input_shape}")

    @property
    def takes_pixels(self) -> bool:
        return self.kind != "keras"

    def model_inputs(self, pixels: np.ndarray) -> np.ndarray:
        """What the Keras model takes for these pixels: themselves, or normalised by ``spec``."""
        return np.asarray(pixels, np.float32) if self.takes_pixels else normalize(pixels, self.spec)

    def logits_of(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(self.model_inputs(pixels), training=False), np.float32)


class TFLitePredictor(Predictor):
    """An exported .tflite through the LiteRT interpreter (pixels in, dequantised logits out)."""

    kind = "tflite"

    def __init__(self, model: TFLiteModel, spec: PreprocessingSpec, label_names, **kwargs):
        super().__init__(spec, label_names, **kwargs)
        self.model = model
        if model.input_shape != spec.input_shape:
            raise RunError(f"{self.path or 'the TFLite model'}: takes {model.input_shape}, the "
                           f"run's model {spec.input_shape}")

    def logits_of(self, pixels: np.ndarray) -> np.ndarray:
        return self.model.logits(pixels).astype(np.float32)


def score_together(predictors: Sequence[Predictor], manifest: Manifest,
                   batch_size: int = BATCH_SIZE, progress: Progress = iter) -> list[np.ndarray]:
    """Each predictor's [N, C] logits over the SAME pixel batches, decoded once (for parity)."""
    spec = predictors[0].spec
    if any((p.spec.input_shape, p.spec.resize_method) != (spec.input_shape, spec.resize_method)
           for p in predictors):
        raise RunError("the models take different inputs: "
                       + ", ".join(f"{p.name} {p.spec.input_shape}" for p in predictors))
    outputs = [[] for _ in predictors]
    for batch in progress(iter_pixel_batches(manifest, spec, batch_size)):
        for predictor, sink in zip(predictors, outputs):
            sink.append(predictor.logits_of(batch))
    return [np.concatenate(sink) if sink else np.zeros((0, len(p.label_names)), np.float32)
            for p, sink in zip(predictors, outputs)]


def saved_thresholds(model_path: str | Path) -> dict[str, float] | None:
    """The operating thresholds exported beside a model file (``thresholds.json``), if any."""
    path = Path(model_path).parent / THRESHOLDS
    if not path.is_file():
        return None
    labels = json.loads(path.read_text()).get("labels", {})
    return {name: values["threshold"] for name, values in labels.items()}


def find_run(model_path: str | Path) -> Path | None:
    """The run of a model file: its folder (or parent for QAT), or for a .tflite the one its
    ``model_card.json`` names; None when there is none."""
    model_path = Path(model_path)
    if model_kind(model_path) != "tflite":
        return owning_run(model_path)
    card = model_path.parent / MODEL_CARD
    if not card.is_file():
        return None
    run = Path(json.loads(card.read_text()).get("training", {}).get("run") or "")
    return run if str(run) != "." and (run / RUN_INFO).is_file() else None


def _labels_beside(model_path: Path) -> list[str]:
    labels = model_path.parent / LABELS
    if not labels.is_file():
        raise RunError(f"{model_path}: not inside a tfcxr run and no {LABELS} beside it; "
                       "pass its run (--run)")
    return [line.strip() for line in labels.read_text().splitlines() if line.strip()]


def open_predictor(model: str | Path | TrainedRun, run: str | Path | TrainedRun | None = None
                   ) -> Predictor:
    """A predictor for a run (its trained model), a run directory or a model file (``.keras``,
    QAT ``.h5`` / SavedModel, ``.tflite``); ``run``: the run it belongs to, when it cannot be
    found from the file's location."""
    if isinstance(model, TrainedRun) or (Path(model).is_dir() and (Path(model) / RUN_INFO).is_file()):
        run = model if isinstance(model, TrainedRun) else TrainedRun.open(model)
        model = run.model_path
    path = Path(model)
    if not path.exists():
        raise RunError(f"{path}: model not found")
    if run is None:
        run = find_run(path)
    trained = run if isinstance(run, TrainedRun) or run is None else TrainedRun.open(run)
    labels = trained.label_names if trained else _labels_beside(path)
    loaded = load_model(path)
    kwargs = {"path": path, "run": trained, "thresholds": saved_thresholds(path)}
    if isinstance(loaded, TFLiteModel):
        size, channels = loaded.input_shape[0], loaded.input_shape[-1]
        spec = trained.spec if trained else PreprocessingSpec(image_size=size, channels=channels,
                                                              mean=(0.0,) * channels,
                                                              std=(1.0,) * channels)
        return TFLitePredictor(loaded, spec, labels, **kwargs)
    spec = trained.spec if trained else model_preprocessing(path, int(loaded.input_shape[1]))
    return KerasPredictor(loaded, spec, labels, **kwargs)
