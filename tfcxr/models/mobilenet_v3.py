"""MobileNetV3-Small and -Large students (Howard et al. 2019, Tables 1 and 2), quantizable.

``keras.applications.MobileNetV3*`` cannot be quantized by tfmot (its hard-swish is a
``TFOpLambda``, its SE a bare ``Multiply``), so these are the paper's block tables fed to the OFA
builder, which uses tfcxr's own layers. MobileNetV3-Large is the network OFA itself starts from,
so the two families share one builder and one layer naming.

As in torchvision and keras.applications, the 1x1 head convolution carries no SE (the paper's
table puts one on the Small head) and the 1280/1024-wide feature mix has a bias (the table's
"NBN": no BatchNorm); with a 1000-class head the parameter counts equal torchvision's
(5,483,032 Large, 2,542,856 Small). No pretrained weights are ported for these, so padding
defaults to Keras ``same``; pass ``padding="pytorch"`` for PyTorch's symmetric padding.
"""

from __future__ import annotations

from tfcxr.backend import keras
from tfcxr.models.ofa_mobilenet import GRADCAM_LAYER, MBBlock, OFAArch, build_ofa_mobilenet
from tfcxr.models.registry import register_model
from tfcxr.preprocessing import PreprocessingSpec

R, H = "relu", "h_swish"

# Table 1: (kernel, exp size, out, stride, NL, SE); exp size == input width means no expansion.
MOBILENET_V3_LARGE = OFAArch(stem=16, final_expand=960, feature_mix=1280, feature_mix_bias=True,
                             blocks=(
    MBBlock(3, 16, 16, 1, R, False),
    MBBlock(3, 64, 24, 2, R, False), MBBlock(3, 72, 24, 1, R, False),
    MBBlock(5, 72, 40, 2, R, True), MBBlock(5, 120, 40, 1, R, True), MBBlock(5, 120, 40, 1, R, True),
    MBBlock(3, 240, 80, 2, H, False), MBBlock(3, 200, 80, 1, H, False),
    MBBlock(3, 184, 80, 1, H, False), MBBlock(3, 184, 80, 1, H, False),
    MBBlock(3, 480, 112, 1, H, True), MBBlock(3, 672, 112, 1, H, True),
    MBBlock(5, 672, 160, 2, H, True), MBBlock(5, 960, 160, 1, H, True), MBBlock(5, 960, 160, 1, H, True),
))

# Table 2.
MOBILENET_V3_SMALL = OFAArch(stem=16, final_expand=576, feature_mix=1024, feature_mix_bias=True,
                             blocks=(
    MBBlock(3, 16, 16, 2, R, True),
    MBBlock(3, 72, 24, 2, R, False), MBBlock(3, 88, 24, 1, R, False),
    MBBlock(5, 96, 40, 2, H, True), MBBlock(5, 240, 40, 1, H, True), MBBlock(5, 240, 40, 1, H, True),
    MBBlock(5, 120, 48, 1, H, True), MBBlock(5, 144, 48, 1, H, True),
    MBBlock(5, 288, 96, 2, H, True), MBBlock(5, 576, 96, 1, H, True), MBBlock(5, 576, 96, 1, H, True),
))


@register_model("mobilenet_v3_large", role="student", preprocessing=PreprocessingSpec(image_size=224),
                gradcam_layer=GRADCAM_LAYER, quantizable=True,
                description="MobileNetV3-Large from tfcxr layers: 4.22 M params, 0.22 GMACs at 224")
def mobilenet_v3_large(num_classes: int, input_shape: tuple[int, int, int], padding: str = "same",
                       dropout: float = 0.0) -> keras.Model:
    return build_ofa_mobilenet(MOBILENET_V3_LARGE, num_classes, input_shape, padding=padding,
                               dropout=dropout, name="mobilenet_v3_large")


@register_model("mobilenet_v3_small", role="student", preprocessing=PreprocessingSpec(image_size=224),
                gradcam_layer=GRADCAM_LAYER, quantizable=True,
                description="MobileNetV3-Small from tfcxr layers: 1.53 M params, 0.06 GMACs at 224")
def mobilenet_v3_small(num_classes: int, input_shape: tuple[int, int, int], padding: str = "same",
                       dropout: float = 0.0) -> keras.Model:
    return build_ofa_mobilenet(MOBILENET_V3_SMALL, num_classes, input_shape, padding=padding,
                               dropout=dropout, name="mobilenet_v3_small")
