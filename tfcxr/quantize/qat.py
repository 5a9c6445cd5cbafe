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

import logging
import warnings
from pathlib import Path

import tensorflow_model_optimization as tfmot

from tfcxr.backend import keras
from tfcxr.errors import TfcxrError
from tfcxr.io import atomic_path
from tfcxr.models.layers import HardSigmoid, HardSwish, SqueezeExcite
from tfcxr.quantize.configs import OutputQuantizeConfig, SqueezeExciteQuantizeConfig

log = logging.getLogger(__name__)

_tfmot_keras = tfmot.quantization.keras
_CUSTOM_CONFIGS = {
    HardSwish: OutputQuantizeConfig,
    HardSigmoid: OutputQuantizeConfig,
    SqueezeExcite: SqueezeExciteQuantizeConfig,
}
_CUSTOM_OBJECTS = {cls.__name__: cls for cls in (*_CUSTOM_CONFIGS, *_CUSTOM_CONFIGS.values())}
_FOLDS_BATCH_NORM = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


def _is_folded_batch_norm(layer) -> bool:
    """True for a BatchNormalization fed by one linear conv / Dense: tfmot folds and quantizes it."""
    if not isinstance(layer, keras.layers.BatchNormalization) or len(layer._inbound_nodes) != 1:  # noqa: SLF001
        return False
    producer = layer._inbound_nodes[0].inbound_layers  # noqa: SLF001
    return (isinstance(producer, _FOLDS_BATCH_NORM)
            and producer.get_config().get("activation") == "linear")


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
    left_float = []

    def annotate(layer):
        config_cls = _CUSTOM_CONFIGS.get(type(layer))
        if config_cls is not None:
            return _tfmot_keras.quantize_annotate_layer(layer, config_cls())
        if registry.supports(layer) or _is_folded_batch_norm(layer):
            return _tfmot_keras.quantize_annotate_layer(layer)
        left_float.append(layer.name)
        return layer

    annotated = keras.models.clone_model(model, clone_function=annotate)
    if left_float:
        log.warning("QAT leaves %d layer(s) of %s in float: %s", len(left_float), model.name,
                    ", ".join(left_float))
    with quantize_scope():
        return _tfmot_keras.quantize_apply(annotated)


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
        return keras.models.load_model(path, compile=compile)
