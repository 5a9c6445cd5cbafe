"""ResNet50 teacher: keras.applications' backbone, flattened into one functional graph.

The backbone is built on the model's own input tensor (``input_tensor=``) rather than nested as a
sub-model, so its layers are the model's layers: Grad-CAM (tf-explain) can address
``conv5_block3_out`` by name, and nothing hides behind a ``Functional`` layer.
"""

from __future__ import annotations

from pathlib import Path

from tfcxr.backend import keras
from tfcxr.errors import TfcxrError
from tfcxr.models.registry import register_model
from tfcxr.preprocessing import PreprocessingSpec

GRADCAM_LAYER = "conv5_block3_out"  # the last residual block's ReLU output

# keras.applications' ResNet50 rejects inputs below 32x32.
MIN_INPUT_SIZE = 32


# keras.applications' ResNet50 weights expect "caffe" inputs: BGR, 0-255, per-channel mean removed,
# no scaling. On [0, 1] inputs that is (x - mean/255) / (1/255); a grayscale image replicated to
# three channels is the same in BGR and RGB, so the channel swap needs no step of its own.
CAFFE_PREPROCESSING = PreprocessingSpec(
    image_size=224, mean=(103.939 / 255, 116.779 / 255, 123.68 / 255), std=(1 / 255,) * 3)


@register_model("resnet50", role="teacher", preprocessing=CAFFE_PREPROCESSING,
                gradcam_layer=GRADCAM_LAYER,
                description="keras.applications ResNet50 backbone + global average pool + logits. "
                            "Weights: a local keras.applications notop .h5 via weights_imagenet=.")
def resnet50(num_classes: int, input_shape, weights_imagenet: str | Path | None = None):
    if min(input_shape[:2]) < MIN_INPUT_SIZE:
        raise ValueError(f"resnet50 needs inputs of at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} "
                         f"pixels; got {input_shape}")
    if weights_imagenet is not None and not Path(weights_imagenet).is_file():
        raise TfcxrError(f"{weights_imagenet}: ImageNet weights file not found")
    inputs = keras.Input(shape=input_shape, name="image")
    try:
        backbone = keras.applications.ResNet50(
            include_top=False, input_tensor=inputs,
            weights=None if weights_imagenet is None else str(weights_imagenet))
    except ValueError as e:
        raise TfcxrError(f"{weights_imagenet}: not a ResNet50 notop weights file: {e}") from None
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(backbone.output)
    logits = keras.layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name="resnet50")
