"""Runs and inference: the layer between training and everything that uses a trained model.

``tfcxr.runs.training`` writes runs (teacher, distillation, the teacher-first pipeline) and
``tfcxr.runs.qat`` fine-tunes them with fake quantisation; ``TrainedRun`` opens a finished one;
``load_model`` loads any saved model by its path; ``open_predictor`` scores films with a Keras,
app, QAT or TFLite model through one streaming interface. The directory format is
``tfcxr.runs.layout``.
"""

from tfcxr.runs.layout import RunError, run_is_complete, trained_model
from tfcxr.runs.loading import load_model
from tfcxr.runs.predictor import (KerasPredictor, Predictor, TFLitePredictor, iter_pixel_batches,
                                  open_predictor, score_together)
from tfcxr.runs.trained import TrainedRun

__all__ = ["KerasPredictor", "Predictor", "RunError", "TFLitePredictor", "TrainedRun",
           "iter_pixel_batches", "load_model", "open_predictor", "run_is_complete",
           "score_together", "trained_model"]
