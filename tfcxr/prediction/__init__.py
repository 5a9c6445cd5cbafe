"""Prediction: probabilities and positives of a trained model for films on disk.

    import tfcxr
    result = tfcxr.predict("runs/nih", ["clinic/", "scans/*.dcm"])   # or tfcxr.prediction.predict
    result.table                       # pandas: path, prob_<label>..., positives, model, contract
    result.skipped                     # {path: problem} of the films that could not be read
"""

from tfcxr.prediction.predict import Predictions, predict

__all__ = ["Predictions", "predict"]
