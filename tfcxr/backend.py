"""The one place that chooses the Keras implementation.

tensorflow-model-optimization only accepts Keras 2 models, so the whole train -> QAT -> export
path runs on tf-keras. ``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is first imported;
every tfcxr module imports ``tf`` and ``keras`` from here, never from ``tensorflow`` directly.

TensorFlow's C++ start-up chatter (oneDNN, missing CUDA drivers) is written to the process's
stderr before logging is configured, so no environment variable silences it; it is muted here
for the duration of the import, and again while ``start_devices`` initialises the devices.
Set ``TFCXR_TF_LOGS=1`` to see it.

Importing tfcxr initialises no device: TensorFlow's devices start at the first op, and until
then a caller may still set visible devices, memory growth or logical devices (a runtime error
once they have started). ``start_devices`` applies such settings, starts the devices and says
which ones there are; every training run calls it first.
"""

import contextlib
import os
import sys

from tfcxr.errors import ConfigError  # imports no TensorFlow

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _quiet_native_stderr(imported_already: bool = False):
    if os.environ.get("TFCXR_TF_LOGS") == "1" or imported_already:
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


with _quiet_native_stderr("tensorflow" in sys.modules):
    import tensorflow as tf
    import tf_keras as keras

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



def devices_started() -> bool:
    """Whether TensorFlow's devices are initialised (after which their settings are fixed)."""
    from tensorflow.python.eager import context

    return context.context()._context_handle is not None  # no public API answers this


def start_devices(memory_growth: bool = False, visible_gpus: list[int] | None = None) -> list[str]:
    """Apply device settings, start TensorFlow's devices and return their names.

    memory_growth: let each GPU's memory grow as needed instead of reserving it all at start.
    visible_gpus: indices of the GPUs to use (None: all). Settings that differ from those of
        devices already started cannot be applied and raise a RuntimeError saying so.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if not devices_started():
        if visible_gpus is not None:
            unknown = sorted(set(visible_gpus) - set(range(len(gpus))))
            if unknown:
                raise ConfigError(f"visible GPU(s) {unknown} not found; this machine has {len(gpus)}")
            tf.config.set_visible_devices([gpus[i] for i in visible_gpus], "GPU")
            gpus = [gpus[i] for i in visible_gpus]
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, memory_growth)
        with _quiet_native_stderr():
            tf.config.list_logical_devices()  # starts the devices
    else:
        visible = tf.config.get_visible_devices("GPU")
        if visible_gpus is not None and len(visible) != len(visible_gpus):
            raise ConfigError(f"TensorFlow's devices already started with {len(visible)} GPU(s) "
                               f"visible; cannot make {visible_gpus} visible now")
        if any(tf.config.experimental.get_memory_growth(g) != memory_growth for g in visible):
            raise ConfigError("TensorFlow's devices already started with another memory growth "
                               "setting; set it before the first TensorFlow op")
    return [d.name for d in tf.config.list_logical_devices()]


__all__ = ["tf", "keras", "start_devices", "devices_started"]
