"""Quantization-aware training of tfcxr models (tfmot, 8-bit, for int8 TFLite export)."""

from tfcxr.quantize.qat import (calibrate_ranges, is_qat_model, is_quantized_layer, load_qat_model,
                                quantize_model, quantize_scope, save_qat_model)

__all__ = ["calibrate_ranges", "is_qat_model", "is_quantized_layer", "load_qat_model",
           "quantize_model", "quantize_scope", "save_qat_model"]
