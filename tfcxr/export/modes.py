"""The four TFLite export modes, as data: how each converts and how closely it must score.

| mode    | weights      | activations | input (``pixels``) | output (``logits``) |
|---------|--------------|-------------|--------------------|---------------------|
| float32 | float32      | float32     | float32, 0..255    | float32             |
| float16 | float16      | float32     | float32, 0..255    | float32             |
| dynamic | int8         | float32 (int8 matmuls at run time) | float32, 0..255 | float32 |
| int8    | int8         | int8        | uint8, 0..255 (scale 1, zero point 0) | float32 (int8 logits, dequantized in the model) |

Every mode outputs logits, never probabilities: int8 has 256 levels, and a sigmoid quantised to
int8 maps all the small probabilities of rare findings onto a few levels and destroys their
ranking (``../shared/docs/stack.md``). Logits keep the order; the sigmoid is applied in float
(by the Task Library / MediaPipe from the metadata's score calibration, or by the app).

The int8 file ends in one DEQUANTIZE: its logits are computed in int8 and handed out as float32,
the type every app runtime takes (MediaPipe Tasks and the Task Library refuse an INT8 output;
they take UINT8 or FLOAT32). Chosen by measurement over a uint8 output with a zero point, which
the converter writes as an int8 -> uint8 QUANTIZE that XNNPACK leaves outside its partition
(``tfcxr benchmark`` shows the partitions); the DEQUANTIZE runs inside it. The values are the
same 256 int8 levels either way, so the ranking of rare findings is what int8 computed.
The tolerances are what the parity gate checks (``tfcxr.export.parity``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tfcxr.backend import tf
from tfcxr.errors import TfcxrError


@dataclass(frozen=True)
class ParityTolerance:
    """What a mode must hold against its Keras model on the same images.

    max_abs_prob: bound on |p_tflite - p_keras| over all images and labels (None: not gated),
        at its ``prob_quantile`` (1.0: the largest difference; 0.99: all but the 1 % largest).
    max_label_auc_delta: per-label |AUC_tflite - AUC_keras|, for labels with at least
        ``min_positives`` positives and negatives (fewer make AUC too coarse to compare).
    max_mean_auc_delta: |mean AUC_tflite - mean AUC_keras| over the labels with an AUC.
    """

    max_abs_prob: float | None = None
    prob_quantile: float = 1.0
    max_label_auc_delta: float | None = None
    max_mean_auc_delta: float | None = None
    min_positives: int = 10


@dataclass(frozen=True)
class ExportMode:
    name: str
    description: str
    tolerance: ParityTolerance
    configure: Callable  # configure(converter, representative_dataset) -> None
    integer_io: bool = False  # uint8 pixels in, int8 inside; needs representative data


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
    converter.inference_output_type = tf.float32  # one DEQUANTIZE at the end


MODES: dict[str, ExportMode] = {m.name: m for m in (
    ExportMode("float32", "float32 weights and activations: the Keras model, bit for bit",
               ParityTolerance(max_abs_prob=1e-4), _float32),
    ExportMode("float16", "float16 weights (half the size), float32 arithmetic",
               ParityTolerance(max_abs_prob=1e-2), _float16),
    # dynamic quantises each film's activations to 8 bits at run time, over that film's own
    # range, so a film with an extreme activation moves more than the rest: its largest |dp|
    # grows with the number of films scored (demo student: 0.053 over the 624 test scores, 0.138
    # over the 2,382 training scores, while the 99th percentile stays 0.018 and 0.016). The bound
    # is on the 99th percentile, which does not depend on the set's size; the float modes, whose
    # errors have no such tail, keep theirs on the largest difference.
    ExportMode("dynamic", "int8 weights, float activations (dynamic-range quantisation)",
               ParityTolerance(max_abs_prob=5e-2, prob_quantile=0.99, max_label_auc_delta=0.01,
                               max_mean_auc_delta=0.005), _dynamic),
    ExportMode("int8", "full integer: int8 weights and activations, uint8 pixels in, float32 "
               "logits out (dequantized in the model)",
               ParityTolerance(max_label_auc_delta=0.01, max_mean_auc_delta=0.005), _int8,
               integer_io=True),
)}


def get_mode(name: str) -> ExportMode:
    try:
        return MODES[name]
    except KeyError:
        raise TfcxrError(f"unknown export mode {name!r}; choose one of {', '.join(MODES)}") from None
