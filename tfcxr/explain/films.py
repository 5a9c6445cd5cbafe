"""Explain films from files: Grad-CAM of a model (and its teacher) for chosen labels, as pictures.

``explain_films`` is what ``tfcxr explain`` runs. Each model is opened as a predictor (a run
directory, a ``.keras`` or QAT ``.h5`` file), so it is fed exactly its run's input contract; the
maps are drawn over the film at the film's own resolution, one figure per film and label, the
teacher's panel beside the student's, each captioned with the model's probability.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfcxr.data.images import load_image
from tfcxr.data.pipeline import preprocess_image
from tfcxr.errors import TfcxrError
from tfcxr.explain.gradcam import grad_cam, resolve_labels
from tfcxr.explain.overlay import Panel, save_figure
from tfcxr.io import write_text_atomic
from tfcxr.metrics import sigmoid
from tfcxr.runs.predictor import KerasPredictor, Predictor, open_predictor


@dataclass
class Explainer:
    """One model ready to explain films: the Keras model and its run's input contract."""

    predictor: Predictor
    role: str

    def __post_init__(self):
        if not isinstance(self.predictor, KerasPredictor):
            raise TfcxrError(f"{self.predictor.path}: explain a Keras model (RUN, .keras, .h5); "
                             "a .tflite exported with --gradcam carries its own maps")
        if self.predictor.run is None:
            raise TfcxrError(f"{self.predictor.path}: not inside a tfcxr run directory")
        self.run = self.predictor.run

    @property
    def title(self) -> str:
        return f"{self.role}: {self.run.model_name}"

    def maps(self, film: np.ndarray, labels: list[int], guided: bool):
        spec = self.predictor.spec
        image = preprocess_image(film, spec)
        if self.predictor.takes_pixels:  # an app or QAT model
            image = (image * np.float32(spec.std) + np.float32(spec.mean)) * 255.0
        maps, logits = grad_cam(self.predictor.model, image[None], labels, guided=guided,
                                model_name=self.run.model_name, return_logits=True)
        return maps[0], sigmoid(logits[0])


def explain_films(model: str | Path, films: list[Path], out: str | Path, *, label="all",
                  teacher: str | Path | None = None, guided: bool = False,
                  progress=iter) -> list[dict]:
    """Write ``out/<film>_<label>.png`` for every film and label; returns (and writes as
    ``out/explanations.json``) each film's probabilities and figure paths. ``progress`` wraps
    the films (e.g. a tqdm bar)."""
    explainers = [Explainer(open_predictor(model), "student")]
    if teacher is not None:
        explainers.insert(0, Explainer(open_predictor(teacher), "teacher"))
    names = explainers[-1].run.label_names
    if any(e.run.label_names != names for e in explainers):
        raise TfcxrError("the teacher and the student predict different labels")
    labels = resolve_labels(label, len(names), names)
    out = Path(out)
    index = []
    for path in progress(films):
        film = load_image(path)
        results = [e.maps(film, labels, guided) for e in explainers]
        entry = {"film": str(path), "figures": {}, "probabilities": {}}
        for e, (_, probs) in zip(explainers, results):
            entry["probabilities"][e.role] = {names[j]: float(probs[j]) for j in labels}
        for k, j in enumerate(labels):
            panels = [Panel(e.title, maps[k], names[j], float(probs[j]))
                      for e, (maps, probs) in zip(explainers, results)]
            figure = save_figure(out / f"{Path(path).stem}_{names[j]}.png", film, panels,
                                 title=f"{Path(path).name}: Grad-CAM{' (guided)' if guided else ''}")
            entry["figures"][names[j]] = str(figure)
        index.append(entry)
    write_text_atomic(out / "explanations.json", json.dumps(index, indent=2) + "\n")
    return index
