"""Scores for a folder of films: what ``tfcxr predict`` and ``tfcxr.predict`` run.

``predict(model, films)`` opens ``model`` with ``tfcxr.runs.open_predictor`` (a run directory, a
``.keras`` / QAT ``.h5`` file, or a ``.tflite`` with the ``model_card.json`` / ``labels.txt`` /
``thresholds.json`` of its export beside it) and scores the films (``collect_films``: files,
folders, glob patterns) through the same streaming predictor ``tfcxr evaluate`` uses, so a film
gets exactly the score ``evaluate`` gives it. Films are scored in chunks of ``CHUNK_BATCHES``
batches; only the logits are kept, so memory does not grow with the number of films beyond the
result table itself.

Unreadable films are skipped, never fatal: every film is first checked cheaply
(``find_bad_images``: end markers of PNG/JPEG, a full decode of anything else), and a film whose
compressed data turns out corrupt while its chunk is decoded is found by decoding that chunk's
films one by one, after which the rest of the chunk is scored again. ``Predictions.skipped``
names each skipped film and its problem.

The positives of a film are the labels whose probability reaches the model's operating
threshold (``tfcxr.evaluation.models.operating_thresholds``: the ``thresholds.json`` of an
export, else Youden's J on the validation split of the model's run, as in ``tfcxr evaluate``).
A model with neither gets probabilities only, and ``Predictions.thresholds`` is None.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tfcxr.backend import tf
from tfcxr.data.films import collect_films
from tfcxr.data.images import find_bad_images, load_image
from tfcxr.data.manifest import Manifest
from tfcxr.errors import DatasetError, ImageDecodeError, TfcxrError
from tfcxr.evaluation.models import operating_thresholds
from tfcxr.explain.films import explain_films
from tfcxr.io import atomic_path, write_text_atomic
from tfcxr.metrics import sigmoid
from tfcxr.runs.predictor import BATCH_SIZE, MODEL_CARD, Predictor, open_predictor
from tfcxr.runs.trained import TrainedRun

CHUNK_BATCHES = 16  # films decoded per pipeline: bounds the work redone when a film is corrupt
PROBABILITY_PREFIX = "prob_"


@dataclass
class Predictions:
    """One row per scored film (``table``), the films skipped and the model that scored them.

    ``table`` columns: ``path``, ``prob_<label>`` for every label (in the model's order),
    ``positives`` (labels at or over their threshold, ``|``-separated; empty when none, or when
    the model has no thresholds), then the model and its contract: ``model``, ``kind``
    (keras / app / qat / tflite), ``mode`` (the export mode of a .tflite: float32, float16,
    dynamic, int8; else the kind), ``input_size`` and ``dicom_window``.
    """

    table: pd.DataFrame
    skipped: dict[str, str]
    model: dict
    thresholds: dict[str, float] | None
    threshold_source: str
    gradcam: list[dict] = dataclasses.field(default_factory=list)

    @property
    def label_names(self) -> list[str]:
        return list(self.model["labels"])

    def probabilities(self) -> np.ndarray:
        return self.table[[PROBABILITY_PREFIX + n for n in self.label_names]].to_numpy()

    def to_dict(self) -> dict:
        return {"model": self.model, "thresholds": self.thresholds,
                "threshold_source": self.threshold_source,
                "films": json.loads(self.table.to_json(orient="records")),
                "skipped": [{"path": p, "problem": why} for p, why in self.skipped.items()],
                "gradcam": self.gradcam}

    def write_csv(self, path: str | Path) -> Path:
        """The table as CSV, written atomically (complete or absent)."""
        with atomic_path(path) as tmp:
            self.table.to_csv(tmp, index=False, float_format="%.9g")
        return Path(path)

    def write_json(self, path: str | Path) -> Path:
        """Everything (model, contract, thresholds, rows, skipped films) as JSON, atomically."""
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return Path(path)


def predict(model: str | Path | TrainedRun | Predictor, films: Iterable[str | Path], *,
            run: str | Path | None = None, recursive: bool = False,
            batch_size: int = BATCH_SIZE, threshold_split: str = "val",
            dicom_window: str | None = None, gradcam: Sequence[str] | str | None = None,
            gradcam_dir: str | Path | None = None,
            progress: Callable[[int], Callable] | None = None) -> Predictions:
    """Score ``films`` (files, folders, glob patterns) with ``model``; see the module docstring.

    run: the run a model file belongs to when its location does not say.
    dicom_window: "auto" / "off" overrides the model's ``preprocessing.json`` for DICOM files.
    gradcam: labels (names, or "all") to draw Grad-CAM overlays for, per film, into
        ``gradcam_dir`` (``tfcxr.explain.explain_films``; a Keras model of a run only).
    progress: given the number of films, returns a wrapper for the pixel batches that reports
        progress (``tfcxr predict`` passes a tqdm bar); default: none.
    """
    predictor = model if isinstance(model, Predictor) else open_predictor(model, run)
    if dicom_window is not None:
        predictor.spec = dataclasses.replace(predictor.spec, dicom_window=dicom_window)
    if gradcam and gradcam_dir is None:
        raise TfcxrError("Grad-CAM overlays need a folder to go to (gradcam_dir / --gradcam-dir)")
    paths = [str(p) for p in collect_films(films, recursive=recursive)]
    skipped = find_bad_images(paths, predictor.spec.dicom_window)
    good = [p for p in paths if p not in skipped]
    wrap = progress(len(paths)) if progress else iter
    scored, logits = [], []
    step = batch_size * CHUNK_BATCHES
    for start in range(0, len(good), step):
        chunk_paths, chunk_logits = _score_chunk(predictor, good[start:start + step], batch_size,
                                                 wrap, skipped)
        scored += chunk_paths
        logits.append(chunk_logits)
    if not scored:
        raise DatasetError(None, f"none of the {len(paths)} film(s) could be read:\n"
                                 + _summary(skipped))
    thresholds, source = _thresholds(predictor, threshold_split, batch_size)
    probs = sigmoid(np.concatenate(logits))
    table = _table(scored, probs, predictor, thresholds)
    result = Predictions(table, {p: skipped[p] for p in paths if p in skipped},
                         model_contract(predictor), thresholds, source)
    if gradcam:
        if predictor.kind == "tflite":
            raise TfcxrError(f"{predictor.path}: Grad-CAM overlays need a Keras model (the run or "
                             "its .keras); a .tflite exported with --gradcam carries its own maps")
        labels = gradcam if isinstance(gradcam, str) else list(gradcam)
        result.gradcam = explain_films(predictor.path, [Path(p) for p in scored], gradcam_dir,
                                       label=labels)
    return result


def model_contract(predictor: Predictor) -> dict:
    """The predictor's contract plus the export mode (from a .tflite's ``model_card.json``)."""
    contract = dict(predictor.contract)
    contract["mode"] = predictor.kind
    card = predictor.path.parent / MODEL_CARD if predictor.path is not None else None
    if predictor.kind == "tflite" and card is not None and card.is_file():
        contract["mode"] = json.loads(card.read_text()).get("model", {}).get("mode", "tflite")
    contract["dicom_window"] = predictor.spec.dicom_window
    return contract


def summary(predictions: Predictions) -> str:
    """The films skipped, one line each (empty when none)."""
    return _summary(predictions.skipped)


def _summary(skipped: dict[str, str]) -> str:
    return "\n".join(f"  {path}: {problem}" for path, problem in skipped.items())


def _score_chunk(predictor: Predictor, paths: list[str], batch_size: int, wrap,
                 skipped: dict[str, str]) -> tuple[list[str], np.ndarray]:
    """Logits of ``paths``; a film that fails to decode is added to ``skipped``, the rest kept."""
    try:
        return paths, predictor.score(_manifest(paths, predictor), batch_size, wrap)
    except tf.errors.OpError:
        for path in paths:  # which film broke the pipeline: decode each one in Python
            try:
                load_image(path, predictor.spec.dicom_window)
            except ImageDecodeError as e:
                skipped[path] = e.problem
        rest = [p for p in paths if p not in skipped]
        if len(rest) == len(paths):
            raise
        if not rest:
            return [], np.zeros((0, len(predictor.label_names)), np.float32)
        return _score_chunk(predictor, rest, batch_size, wrap, skipped)


def _manifest(paths: list[str], predictor: Predictor) -> Manifest:
    n, c = len(paths), len(predictor.label_names)
    return Manifest("films", Path.cwd(), predictor.label_names, paths, paths, [""] * n, [""] * n,
                    [""] * n, np.zeros((n, c), np.float32), np.zeros((n, c), np.float32))


def _thresholds(predictor: Predictor, split: str, batch_size: int):
    if predictor.thresholds:
        return predictor.thresholds, f"{predictor.path.parent / 'thresholds.json'}"
    if predictor.run is None:
        return None, "none (no thresholds.json beside the model and no run to choose them on)"
    return (operating_thresholds(predictor, split, batch_size),
            f"Youden's J on the {split!r} split of {predictor.run.path}")


def _table(paths: list[str], probs: np.ndarray, predictor: Predictor,
           thresholds: dict[str, float] | None) -> pd.DataFrame:
    names = predictor.label_names
    table = pd.DataFrame({"path": paths})
    for j, name in enumerate(names):
        table[PROBABILITY_PREFIX + name] = probs[:, j]
    if thresholds is None:
        table["positives"] = ""
    else:
        cut = np.array([thresholds[name] for name in names], np.float64)
        table["positives"] = ["|".join(n for n, hit in zip(names, row) if hit)
                              for row in probs >= cut]
    contract = model_contract(predictor)
    table["model"] = contract["model"]
    table["kind"] = predictor.kind
    table["mode"] = contract["mode"]
    table["input_size"] = predictor.spec.image_size
    table["dicom_window"] = predictor.spec.dicom_window
    return table
