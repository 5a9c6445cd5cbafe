"""QuantizeConfigs for tfcxr's custom layers, so tfmot quantizes them instead of failing.

tfmot's default 8-bit registry knows Keras's built-in layers only. These configs give the
custom layers the treatment the registry gives built-ins of the same kind: 8-bit symmetric
per-tensor weights (``LastValueQuantizer``) and 8-bit asymmetric outputs tracked by moving
averages (``MovingAverageQuantizer``), the ranges the TFLite int8 converter reads. They are
registered Keras serializables, so QAT models reload inside ``tfcxr.quantize.quantize_scope``.
"""

from __future__ import annotations

import tensorflow_model_optimization as tfmot

from tfcxr.backend import keras

_quantizers = tfmot.quantization.keras.quantizers


@keras.utils.register_keras_serializable(package="tfcxr")
class OutputQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """For weightless element-wise layers (HardSwish, HardSigmoid): quantize the output only."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [_quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                                   narrow_range=False)]

    def get_config(self):
        return {}


@keras.utils.register_keras_serializable(package="tfcxr")
class PrefixedMovingAverageQuantizer(_quantizers.MovingAverageQuantizer):
    """A ``MovingAverageQuantizer`` whose range variables carry a prefix of their own.

    tfmot names every activation quantizer's variables ``post_activation_min`` / ``_max``, so two
    inside one layer would collide when the model is saved as HDF5; the prefix also says which
    inner tensor a range belongs to (``gate_post_activation_min``)."""

    def __init__(self, prefix: str, **kwargs):
        super().__init__(**kwargs)
        self.prefix = prefix

    def build(self, tensor_shape, name, layer):
        return super().build(tensor_shape, f"{self.prefix}_{name}", layer)

    def get_config(self):
        return {**super().get_config(), "prefix": self.prefix}


def _activation_quantizer(prefix: str) -> PrefixedMovingAverageQuantizer:
    return PrefixedMovingAverageQuantizer(prefix, num_bits=8, per_axis=False, symmetric=False,
                                          narrow_range=False)


@keras.utils.register_keras_serializable(package="tfcxr")
class SqueezeExciteQuantizeConfig(OutputQuantizeConfig):
    """For SqueezeExcite: quantize both 1x1 kernels, the gate and the output.

    Biases stay float, as for Conv2D in the default registry (TFLite stores them as int32). The
    gate (after its h-sigmoid) is fake-quantized at the layer's ``observe_gate`` point, so QAT
    trains with the rounding the int8 file applies there and the converter reads its range from
    training. The squeezed vector (after its ReLU) is deliberately left to the converter's
    calibration: it feeds the expand convolution's bias, and with a fake-quant there the
    converter quantized that bias for the calibrated input scale but ran it with the trained one.
    Fine-tuning leaves the trained range wider (a demo student: max 6.17 trained, 2.2 calibrated),
    so every gate saturated: the int8 files of two demo students lost 0.81 of one label's AUC and
    0.22 of mean AUC.
    """

    def get_weights_and_quantizers(self, layer):
        return [(kernel, _quantizers.LastValueQuantizer(num_bits=8, per_axis=False, symmetric=True,
                                                        narrow_range=False))
                for kernel in (layer.reduce_kernel, layer.expand_kernel)]

    def set_quantize_weights(self, layer, quantize_weights):
        layer.reduce_kernel, layer.expand_kernel = quantize_weights

    def get_activations_and_quantizers(self, layer):
        # ``linear``: tfmot fake-quantizes after the (identity) activation, the tensor as it is.
        return [(layer.observe_gate, _activation_quantizer("gate"))]

    def set_quantize_activations(self, layer, quantize_activations):
        (layer.observe_gate,) = quantize_activations
