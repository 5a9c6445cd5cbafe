"""Quantization-aware training: wrap a float model in tfmot fake-quant ops, save and reload it.

``quantize_model`` annotates every layer tfmot can quantize: built-in layers through tfmot's
default 8-bit registry, BatchNormalization right after a convolution or Dense (tfmot's layout
transforms fold it there; elsewhere tfmot rejects it), and tfcxr's custom layers (h-swish,
h-sigmoid, squeeze-excite) through the QuantizeConfigs in ``tfcxr.quantize.configs``. Layers
none of these cover stay float and are listed in a warning. The model must be flat (a nested
backbone cannot be annotated layer by layer), which every tfcxr student is.

Train the QAT model before exporting it: until its first training steps the quantizers hold
their initial ranges (a degenerate [0, 0] at the input), which the TFLite converter accepts but
the XNNPACK delegate then refuses to run.

QAT models do not survive the ``.keras`` format (tf-keras reloads them with "expected 5
variables, but received 3"), so ``save_qat_model`` writes HDF5 (``.h5``) or a SavedModel
directory, and ``load_qat_model`` reads either inside ``quantize_scope``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import tensorflow_model_optimization as tfmot
from tensorflow_model_optimization.python.core.quantization.keras import quant_ops

from tfcxr.backend import keras, tf
from tfcxr.errors import TfcxrError
from tfcxr.io import atomic_path
from tfcxr.models.app_model import PixelNormalization
from tfcxr.models.layers import HardSigmoid, HardSwish, SqueezeExcite
from tfcxr.quantize.configs import OutputQuantizeConfig, SqueezeExciteQuantizeConfig

log = logging.getLogger(__name__)

_tfmot_keras = tfmot.quantization.keras
_CUSTOM_CONFIGS = {
    HardSwish: OutputQuantizeConfig,
    HardSigmoid: OutputQuantizeConfig,
    SqueezeExcite: SqueezeExciteQuantizeConfig,
    PixelNormalization: OutputQuantizeConfig,
}
_CUSTOM_OBJECTS = {cls.__name__: cls for cls in (*_CUSTOM_CONFIGS, *_CUSTOM_CONFIGS.values())}
_FOLDS_BATCH_NORM = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


def _folded_batch_norms(model: keras.Model) -> set[str]:
    """BatchNormalization layers fed by one linear conv / Dense in ``model``: tfmot folds and
    quantizes those. Read from the model's own graph, since a layer may also sit in other models."""
    layers = {layer.name: layer for layer in model.layers}
    folded = set()
    for entry in model.get_config()["layers"]:
        layer = layers[entry["name"]]
        if not isinstance(layer, keras.layers.BatchNormalization) or len(entry["inbound_nodes"]) != 1:
            continue
        (node,) = entry["inbound_nodes"]
        producer = layers[node[0][0]]
        if (len(node) == 1 and isinstance(producer, _FOLDS_BATCH_NORM)
                and producer.get_config().get("activation") == "linear"):
            folded.add(layer.name)
    return folded


def is_quantized_layer(layer) -> bool:
    """True for tfmot's QAT layers: a ``QuantizeWrapper`` or the input's ``QuantizeLayer``."""
    return isinstance(layer, _tfmot_keras.QuantizeWrapper) or type(layer).__name__ == "QuantizeLayer"


def is_qat_model(model: keras.Model) -> bool:
    """True when ``model`` (or a model nested in it) holds tfmot QAT layers."""
    return any(is_quantized_layer(layer)
               or (isinstance(layer, keras.Model) and is_qat_model(layer))
               for layer in model.layers)


def quantize_scope():
    """Context manager in which tfmot's wrappers, quantizers and tfcxr's layers deserialize."""
    return _tfmot_keras.quantize_scope(_CUSTOM_OBJECTS)


def quantize_model(model: keras.Model) -> keras.Model:
    """Return a QAT copy of ``model`` (same weights, fake-quantized layers); ``model`` is untouched."""
    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        raise TfcxrError(f"cannot quantize {model.name!r}: nested models {nested}; "
                         "build it as one flat functional model")
    registry = _tfmot_keras.default_8bit.Default8BitQuantizeScheme().get_quantize_registry()
    folded = _folded_batch_norms(model)
    left_float = []

    def annotate(layer):
        config_cls = _CUSTOM_CONFIGS.get(type(layer))
        if config_cls is not None:
            return _tfmot_keras.quantize_annotate_layer(layer, config_cls())
        if registry.supports(layer) or layer.name in folded:
            return _tfmot_keras.quantize_annotate_layer(layer)
        left_float.append(layer.name)
        return layer

    annotated = keras.models.clone_model(model, clone_function=annotate)
    if left_float:
        log.warning("QAT leaves %d layer(s) of %s in float: %s", len(left_float), model.name,
                    ", ".join(left_float))
    with quantize_scope():
        return _tfmot_keras.quantize_apply(annotated)


def _is_range_variable(variable) -> bool:
    return variable.name.endswith(("_min:0", "_max:0"))


@contextlib.contextmanager
def _moving_average_decay(decay: float):
    """Swap tfmot's fixed EMA decay (0.999) of activation ranges for ``decay``, while inside."""
    original = quant_ops.MovingAvgQuantize

    def moving_avg_quantize(*args, ema_decay=0.999, **kwargs):
        return original(*args, ema_decay=decay, **kwargs)

    quant_ops.MovingAvgQuantize = moving_avg_quantize
    try:
        yield
    finally:
        quant_ops.MovingAvgQuantize = original


def calibrate_ranges(qat_model: keras.Model, batches, decay: float = 0.5) -> int:
    """Set a fresh QAT model's activation ranges from data, before fine-tuning it.

    tfmot starts every activation range at [-6, 6] and moves it by a 0.999 moving average, so a
    short fine-tune (a few hundred steps) exports int8 ranges that are still mostly that guess:
    activations living in [0, 0.5] get 5 of their 256 levels. Here the ranges follow a fast
    moving average of the batch min / max over ``batches`` (images as the model takes them);
    every other variable (BatchNorm statistics included) is restored afterwards. The forward
    passes run as one traced function (eagerly they took 17 s of a 64 px EEEA-Net-C2's QAT).
    Returns the number of batches seen.
    """
    saved = [(v, v.numpy()) for v in qat_model.weights if not _is_range_variable(v)]
    seen = 0
    with _moving_average_decay(decay):  # traced inside: the graph keeps the fast decay
        step = tf.function(lambda images: qat_model(images, training=True), reduce_retracing=True)
        for batch in batches:
            step(batch)
            seen += 1
    for variable, value in saved:
        variable.assign(value)
    if not seen:
        raise TfcxrError("calibrating QAT ranges needs at least one batch")
    return seen


def save_qat_model(model: keras.Model, path: str | Path) -> Path:
    """Save a QAT model as HDF5 (``*.h5``) or, for any other path, a SavedModel directory."""
    path = Path(path)
    if path.suffix == ".keras":
        raise TfcxrError(f"{path}: QAT models do not reload from .keras files; "
                         "save to a .h5 file or a SavedModel directory")
    if path.suffix == ".h5":
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy")  # deliberate here
            model.save(tmp, save_format="h5")
    else:
        model.save(path, save_format="tf")
    return path


def load_qat_model(path: str | Path, compile: bool = False) -> keras.Model:
    """Load a model written by ``save_qat_model``."""
    path = Path(path)
    if not path.exists():
        raise TfcxrError(f"{path}: QAT model not found")
    with quantize_scope():
        try:
            return keras.models.load_model(path, compile=compile)
        except ValueError as e:  # e.g. a weight count that differs from this tfcxr's QAT layers
            raise TfcxrError(f"{path}: cannot load this QAT model ({str(e).strip().splitlines()[0]}); "
                             "if an earlier tfcxr wrote it, run `tfcxr qat` again") from e
