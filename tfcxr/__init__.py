"""tfcxr: distil, quantize, explain and export chest X-ray classifiers for phones."""

__version__ = "0.1.0"
