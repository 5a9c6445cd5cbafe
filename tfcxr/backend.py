"""The one place that chooses the Keras implementation.

tensorflow-model-optimization only accepts Keras 2 models, so the whole train -> QAT -> export
path runs on tf-keras. ``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is first imported;
every tfcxr module imports ``tf`` and ``keras`` from here, never from ``tensorflow`` directly.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

if not keras.__version__.startswith("2."):
    raise ImportError(
        f"tfcxr needs tf-keras (Keras 2); found keras {keras.__version__}. "
        "Install the pinned stack: pip install -e ."
    )
if not tf.keras.__version__.startswith("2."):
    raise ImportError(
        "TensorFlow was imported before tfcxr.backend, so tf.keras is Keras 3. "
        "Import tfcxr (or set TF_USE_LEGACY_KERAS=1) before importing tensorflow."
    )

__all__ = ["tf", "keras"]
