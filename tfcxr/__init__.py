"""tfcxr: distil, quantize, explain and export chest X-ray classifiers for phones."""

__version__ = "0.1.0"

__all__ = ["predict"]


def __getattr__(name):
    # ``tfcxr.predict`` pulls in TensorFlow and every layer below it; ``import tfcxr`` (and so
    # every ``import tfcxr.<package>``) must not.
    if name == "predict":
        from tfcxr.prediction import predict

        return predict
    raise AttributeError(f"module 'tfcxr' has no attribute {name!r}")
