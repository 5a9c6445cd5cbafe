"""tfcxr: distil, quantize, explain and export chest X-ray classifiers for phones.

This module is the facade: ``tfcxr.predict`` (``tfcxr.prediction.predict``) and ``__version__``.
Modules inside tfcxr import what they need from its layers, never from here.
"""

from tfcxr.version import __version__

__all__ = ["__version__", "predict"]


def __getattr__(name):
    # ``tfcxr.predict`` pulls in TensorFlow and every layer below it; ``import tfcxr`` (and so
    # every ``import tfcxr.<package>``) must not.
    if name == "predict":
        from tfcxr.prediction import predict

        return predict
    raise AttributeError(f"module 'tfcxr' has no attribute {name!r}")
