"""The one place that chooses the Keras implementation.

tensorflow-model-optimization only accepts Keras 2 models, so the whole train -> QAT -> export
path runs on tf-keras. ``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is first imported;
every tfcxr module imports ``tf`` and ``keras`` from here, never from ``tensorflow`` directly.

TensorFlow's C++ start-up chatter (oneDNN, missing CUDA drivers) is written to the process's
stderr before logging is configured, so no environment variable silences it; it is muted here
for the duration of the import. Set ``TFCXR_TF_LOGS=1`` to see it.
"""

import contextlib
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _quiet_native_stderr():
    if os.environ.get("TFCXR_TF_LOGS") == "1" or "tensorflow" in sys.modules:
        yield
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (e.g. by a test runner)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


with _quiet_native_stderr():
    import tensorflow as tf
    import tf_keras as keras

    tf.constant(0)  # device initialisation logs once, here

if not keras.__version__.startswith("2."):
    raise ImportError(
        f"tfcxr needs tf-keras (Keras 2); found keras {keras.__version__}. "
        "Install the pinned stack: pip install -e ."
    )
if not tf.keras.__name__.startswith("tf_keras"):
    raise ImportError(
        "TensorFlow was imported before tfcxr.backend, so tf.keras is Keras 3. "
        "Import tfcxr (or set TF_USE_LEGACY_KERAS=1) before importing tensorflow."
    )

__all__ = ["tf", "keras"]
