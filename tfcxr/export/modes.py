"""The four TFLite export modes, as data: how each converts and how closely it must score.

| mode    | weights      | activations | input (``pixels``) | output (``logits``) |
|---------|--------------|-------------|--------------------|---------------------|
| float32 | float32      | float32     | float32, 0..255    | float32             |
| float16 | float16      | float32     | float32, 0..255    | float32             |
| dynamic | int8         | float32 (int8 matmuls at run time) | float32, 0..255 | float32 |
| int8    | int8         | int8        | uint8, 0..255 (scale 1, zero point 0) | int8 logits |

Every mode outputs logits, never probabilities: int8 has 256 levels, and a sigmoid quantised to
int8 maps all the small probabilities of rare findings onto a few levels and destroys their
ranking (``../shared/docs/stack.md``). Logits keep the order; the app dequantises them and applies
the sigmoid in float. The tolerances are what the parity gate checks (``tfcxr.export.parity``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tfcxr.backend import tf
from tfcxr.errors import TfcxrError


@dataclass(frozen=True)
class ParityTolerance:
    """What a mode must hold against its Keras model on the same images.

    max_abs_prob: largest |p_tflite - p_keras| over all images and labels (None: not gated).
    max_label_auc_delta: per-label |AUC_tflite - AUC_keras|, for labels with at least
        ``min_positives`` positives and negatives (fewer make AUC too coarse to compare).
    max_mean_auc_delta: |mean AUC_tflite - mean AUC_keras| over the labels with an AUC.
    """

    max_abs_prob: float | None = None
    max_label_auc_delta: float | None = None
    max_mean_auc_delta: float | None = None
    min_positives: int = 10


@dataclass(frozen=True)
class ExportMode:
    name: str
    description: str
    tolerance: ParityTolerance
    configure: Callable  # configure(converter, representative_dataset) -> None
    integer_io: bool = False  # uint8 pixels in, int8 logits out; needs representative data


def _float32(converter, representative):
    pass


def _float16(converter, representative):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic(converter, representative):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _int8(converter, representative):
    if representative is None:
        raise TfcxrError("int8 export needs representative images (a calibration set)")
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.int8


MODES: dict[str, ExportMode] = {m.name: m for m in (
    ExportMode("float32", "float32 weights and activations: the Keras model, bit for bit",
               ParityTolerance(max_abs_prob=1e-4), _float32),
    ExportMode("float16", "float16 weights (half the size), float32 arithmetic",
               ParityTolerance(max_abs_prob=1e-2), _float16),
    ExportMode("dynamic", "int8 weights, float activations (dynamic-range quantisation)",
               ParityTolerance(max_abs_prob=5e-2, max_label_auc_delta=0.01,
                               max_mean_auc_delta=0.005), _dynamic),
    ExportMode("int8", "full integer: int8 weights and activations, uint8 pixels in, int8 logits out",
               ParityTolerance(max_label_auc_delta=0.01, max_mean_auc_delta=0.005), _int8,
               integer_io=True),
)}


def get_mode(name: str) -> ExportMode:
    try:
        return MODES[name]
    except KeyError:
        raise TfcxrError(f"unknown export mode {name!r}; choose one of {', '.join(MODES)}") from None
