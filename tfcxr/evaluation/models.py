"""Evaluate and compare models, not arrays: what ``tfcxr evaluate`` / ``tfcxr compare`` and
``notebooks/evaluate.ipynb`` run.

A model is anything ``tfcxr.runs.open_predictor`` opens (a run, a ``.keras``, a QAT ``.h5``, a
``.tflite``); its films are streamed through it in batches, so memory does not grow with the
split. Operating thresholds are those exported with the model, else Youden's J on the run's
validation split (never on the films evaluated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tfcxr.data.manifest import Manifest
from tfcxr.data.readers import read_dataset
from tfcxr.evaluation.compare import ComparisonTable, compare_runs
from tfcxr.evaluation.operating_points import youden_thresholds
from tfcxr.evaluation.report import EvaluationReport, evaluate_arrays
from tfcxr.runs.layout import RunError
from tfcxr.runs.predictor import BATCH_SIZE, Predictor, Progress, open_predictor
from tfcxr.runs.trained import TrainedRun, select_split


@dataclass
class Films:
    """The films a model is evaluated on, and how a report names them."""

    manifest: Manifest
    description: str


def operating_thresholds(model: Predictor, split: str = "val",
                         batch_size: int = BATCH_SIZE) -> dict[str, float]:
    """The model's operating thresholds: exported with it, else Youden's J on ``split`` of its run."""
    if model.thresholds:
        return model.thresholds
    if model.run is None:
        raise RunError(f"{model.path}: no thresholds.json beside it and no run to choose them on")
    part = model.run.split(split)
    chosen = youden_thresholds(part.targets, model.probabilities(part, batch_size), part.mask,
                               model.label_names)
    return {name: values["threshold"] for name, values in chosen.items()}


def evaluation_films(model: Predictor, split: str = "test", dataset: str | None = None,
                     root: str | Path | None = None, options: dict | None = None) -> Films:
    """``split`` of the model's run, or of ``dataset`` read afresh from ``root`` (external
    validation; its labels must be the model's)."""
    if dataset:
        data = select_split(read_dataset(dataset, root, **(options or {})), split, root or dataset)
        films = Films(data, f"{dataset} {root or ''} {split} ({len(data)} films)")
    elif model.run is None:
        raise RunError(f"{model.path}: not inside a tfcxr run; give its run or a dataset")
    else:
        data = model.run.split(split)
        films = Films(data, f"{model.run.config.data.dataset} {split} ({len(data)} films)")
    model.require_labels(films.manifest)
    return films


def evaluate_model(model: str | Path | TrainedRun | Predictor, *, run: str | Path | None = None,
                   split: str = "test", dataset: str | None = None, root: str | Path | None = None,
                   options: dict | None = None, n_boot: int = 1000, seed: int = 0,
                   batch_size: int = BATCH_SIZE, progress: Progress = iter) -> EvaluationReport:
    """The evaluation report of ``model`` on ``split`` of its run (or of ``dataset``): per-label
    AUC with patient-level bootstrap CIs, metrics at the operating thresholds, calibration."""
    predictor = model if isinstance(model, Predictor) else open_predictor(model, run)
    films = evaluation_films(predictor, split, dataset, root, options)
    data = films.manifest
    return evaluate_arrays(data.targets, predictor.probabilities(data, batch_size, progress),
                           data.mask, data.patient_ids, predictor.label_names,
                           operating_thresholds(predictor, batch_size=batch_size),
                           n_boot=n_boot, seed=seed, model_name=predictor.name,
                           model_path=str(predictor.path), data=films.description)


def compare_models(models: Sequence[str | Path | Predictor], *, split: str = "test",
                   n_boot: int = 1000, seed: int = 0,
                   batch_size: int = BATCH_SIZE) -> ComparisonTable:
    """Several models on the same films (``split`` of the first model's run), paired bootstrap."""
    predictors = [m if isinstance(m, Predictor) else open_predictor(m) for m in models]
    films = evaluation_films(predictors[0], split)
    data = films.manifest
    for predictor in predictors[1:]:
        predictor.require_labels(data)
    unique = len({p.name for p in predictors}) == len(predictors)
    names = [p.name if unique else str(p.path) for p in predictors]
    probs = {name: p.probabilities(data, batch_size) for name, p in zip(names, predictors)}
    return compare_runs(data.targets, probs, data.mask, data.patient_ids, predictors[0].label_names,
                        n_boot=n_boot, seed=seed)
