"""Once-for-All (OFA) MobileNetV3 subnets: EEEA-Net-C2 (the paper's student), EEEA-Net-C1, OFA-595.

One builder turns an architecture table into a flat functional model, following OFA's
``MobileNetV3`` exactly (``ofa/layers.py`` and ``ofa/utils.py`` as pinned by darmo):

    first_conv   3x3/2 conv (no bias) -> BN -> h_swish
    blocks[i]    MBInvertedConv: [1x1 expand -> BN -> act] -> kxk depthwise/s -> BN -> act
                 -> [SE] -> 1x1 project -> BN (linear), + identity when stride 1 and in == out
    final_expand 1x1 conv (no bias) -> BN -> h_swish       (the Grad-CAM layer, "final_expand")
    GAP (keepdims) -> feature_mix 1x1 conv (no bias, no BN) -> h_swish -> [dropout] -> Dense logits

Layer names are the PyTorch module paths of darmo / OFA checkpoints with the block wrapper
dropped (``blocks.3.depth_conv.conv`` for ``blocks.3.mobile_inverted_conv.depth_conv.conv``),
so the porter in ``tfcxr.models.porting.ofa`` maps a ``state_dict`` onto them by name.

``padding="pytorch"`` (the default) reproduces PyTorch's symmetric ``k // 2`` padding: strided
convolutions get an explicit ``ZeroPadding2D`` and ``valid`` padding, because Keras ``same``
pads stride-2 convolutions asymmetrically (same shapes, shifted outputs) and ported weights
would then give different logits. Stride-1 convolutions use ``same``, which is already
symmetric. ``padding="same"`` drops the extra layers for models trained from scratch.
BatchNorm uses PyTorch's momentum 0.1 and eps 1e-5 (Keras ``momentum=0.9, epsilon=1e-5``).
"""

from __future__ import annotations

from typing import NamedTuple

from tfcxr.backend import keras
from tfcxr.models.layers import HardSwish, SqueezeExcite
from tfcxr.models.registry import register_model
from tfcxr.preprocessing import PreprocessingSpec

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
GRADCAM_LAYER = "final_expand"
PADDINGS = ("pytorch", "same")


class MBBlock(NamedTuple):
    """One MBInvertedConv block; ``mid == in_channels`` means no 1x1 expansion (expand ratio 1)."""

    kernel: int
    mid: int
    out: int
    stride: int
    act: str  # "relu" or "h_swish"
    se: bool


class OFAArch(NamedTuple):
    """An OFA MobileNetV3 subnet: stem width, blocks, head widths."""

    stem: int
    blocks: tuple[MBBlock, ...]
    final_expand: int
    feature_mix: int
    feature_mix_bias: bool = False


R, H = "relu", "h_swish"

# darmo/config/eeea_c2.config (EEEA-Net-C2, the paper's student).
EEEA_NET_C2 = OFAArch(stem=16, final_expand=960, feature_mix=1280, blocks=(
    MBBlock(3, 16, 16, 1, R, False),
    MBBlock(3, 48, 24, 2, R, False), MBBlock(5, 96, 24, 1, R, False),
    MBBlock(3, 72, 24, 1, R, False),
    MBBlock(7, 96, 40, 2, R, True), MBBlock(3, 120, 40, 1, R, True), MBBlock(7, 120, 40, 1, R, True),
    MBBlock(5, 240, 80, 2, H, False), MBBlock(7, 480, 80, 1, H, False),
    MBBlock(5, 240, 80, 1, H, False), MBBlock(3, 240, 80, 1, H, False),
    MBBlock(7, 480, 112, 1, H, True), MBBlock(5, 448, 112, 1, H, True),
    MBBlock(3, 336, 112, 1, H, True), MBBlock(3, 336, 112, 1, H, True),
    MBBlock(5, 672, 160, 2, H, True), MBBlock(3, 960, 160, 1, H, True),
    MBBlock(5, 960, 160, 1, H, True), MBBlock(7, 480, 160, 1, H, True),
))

# darmo/config/eeea_c1.config (EEEA-Net-C1).
EEEA_NET_C1 = OFAArch(stem=16, final_expand=960, feature_mix=1280, blocks=(
    MBBlock(3, 16, 16, 1, R, False),
    MBBlock(3, 48, 24, 2, R, False), MBBlock(5, 72, 24, 1, R, False),
    MBBlock(7, 72, 40, 2, R, True), MBBlock(5, 120, 40, 1, R, True),
    MBBlock(7, 120, 80, 2, H, False), MBBlock(7, 320, 80, 1, H, False),
    MBBlock(5, 320, 112, 1, H, True), MBBlock(3, 448, 112, 1, H, True),
    MBBlock(7, 672, 160, 2, H, True), MBBlock(3, 640, 160, 1, H, True),
    MBBlock(3, 960, 160, 1, H, True), MBBlock(7, 480, 160, 1, H, True),
))

# darmo/config/ofa595.config = OFA "flops@595M_top1@80.0_finetune@75" net.config.
OFA_595 = OFAArch(stem=24, final_expand=1152, feature_mix=1536, blocks=(
    MBBlock(3, 24, 24, 1, R, False),
    MBBlock(3, 72, 32, 2, R, False), MBBlock(5, 128, 32, 1, R, False),
    MBBlock(3, 96, 32, 1, R, False),
    MBBlock(5, 128, 48, 2, R, True), MBBlock(5, 192, 48, 1, R, True),
    MBBlock(3, 288, 48, 1, R, True), MBBlock(5, 144, 48, 1, R, True),
    MBBlock(7, 288, 96, 2, H, False), MBBlock(5, 576, 96, 1, H, False),
    MBBlock(3, 288, 96, 1, H, False), MBBlock(5, 384, 96, 1, H, False),
    MBBlock(3, 576, 136, 1, H, True), MBBlock(5, 816, 136, 1, H, True),
    MBBlock(7, 816, 136, 1, H, True), MBBlock(3, 544, 136, 1, H, True),
    MBBlock(3, 816, 192, 2, H, True), MBBlock(3, 1152, 192, 1, H, True),
    MBBlock(5, 1152, 192, 1, H, True), MBBlock(3, 576, 192, 1, H, True),
))


def _activation(kind: str, name: str):
    if kind == "relu":
        return keras.layers.ReLU(name=name)
    if kind == "h_swish":
        return HardSwish(name=name)
    raise ValueError(f"unknown activation {kind!r}")


def _batch_norm(name: str):
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def _spatial_conv(x, layer_cls, kernel: int, stride: int, padding: str, prefix: str, **conv_kwargs):
    """A kxk (depthwise) conv named ``{prefix}.conv``, padded like PyTorch when asked to."""
    if padding == "pytorch" and stride > 1:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{prefix}.pad")(x)
        mode = "valid"
    else:
        mode = "same"
    return layer_cls(kernel_size=kernel, strides=stride, padding=mode, use_bias=False,
                     name=f"{prefix}.conv", **conv_kwargs)(x)


def _conv_bn_act(x, filters: int, act: str | None, prefix: str, act_name: str | None = None):
    """1x1 conv (no bias) -> BN -> optional activation, named like OFA's ConvLayer."""
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}.conv")(x)
    x = _batch_norm(f"{prefix}.bn")(x)
    return x if act is None else _activation(act, act_name or f"{prefix}.act")(x)


def _mb_block(x, block: MBBlock, index: int, padding: str):
    in_channels = int(x.shape[-1])
    prefix = f"blocks.{index}"
    y = x
    if block.mid != in_channels:
        y = _conv_bn_act(y, block.mid, block.act, f"{prefix}.inverted_bottleneck")
    y = _spatial_conv(y, keras.layers.DepthwiseConv2D, block.kernel, block.stride, padding,
                      f"{prefix}.depth_conv")
    y = _batch_norm(f"{prefix}.depth_conv.bn")(y)
    y = _activation(block.act, f"{prefix}.depth_conv.act")(y)
    if block.se:
        y = SqueezeExcite(name=f"{prefix}.depth_conv.se")(y)
    y = _conv_bn_act(y, block.out, None, f"{prefix}.point_linear")
    if block.stride == 1 and block.out == in_channels:
        y = keras.layers.Add(name=f"{prefix}.add")([x, y])
    return y


def build_ofa_mobilenet(arch: OFAArch, num_classes: int, input_shape: tuple[int, int, int],
                        padding: str = "pytorch", dropout: float = 0.0,
                        name: str = "ofa_mobilenet") -> keras.Model:
    """Build ``arch`` as a flat functional model with a ``num_classes``-logit Dense named ``logits``."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = _spatial_conv(inputs, keras.layers.Conv2D, 3, 2, padding, "first_conv", filters=arch.stem)
    x = _batch_norm("first_conv.bn")(x)
    x = HardSwish(name="first_conv.act")(x)
    for index, block in enumerate(arch.blocks):
        x = _mb_block(x, block, index, padding)
    x = _conv_bn_act(x, arch.final_expand, "h_swish", "final_expand_layer", act_name=GRADCAM_LAYER)
    x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="global_avg_pool")(x)
    x = keras.layers.Conv2D(arch.feature_mix, 1, use_bias=arch.feature_mix_bias,
                            name="feature_mix_layer.conv")(x)
    x = HardSwish(name="feature_mix_layer.act")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def _register(name: str, arch: OFAArch, role: str, description: str):
    @register_model(name, role=role, preprocessing=PreprocessingSpec(image_size=224),
                    gradcam_layer=GRADCAM_LAYER, description=description, quantizable=True)
    def builder(num_classes: int, input_shape: tuple[int, int, int], padding: str = "pytorch",
                dropout: float = 0.0) -> keras.Model:
        return build_ofa_mobilenet(arch, num_classes, input_shape, padding=padding,
                                   dropout=dropout, name=name)

    builder.__name__ = builder.__qualname__ = name
    return builder


eeea_net_c2 = _register(
    "eeea_net_c2", EEEA_NET_C2, "student",
    "EEEA-Net-C2, the paper's student: OFA MobileNetV3 subnet, 4.73 M params, 0.29 GMACs at 224")
eeea_net_c1 = _register(
    "eeea_net_c1", EEEA_NET_C1, "student",
    "EEEA-Net-C1: a smaller OFA MobileNetV3 subnet, 3.81 M params, 0.18 GMACs at 224")
# The paper distils from OFA-595 as one of its teachers; it is quantizable all the same.
ofa_595 = _register(
    "ofa_595", OFA_595, "teacher",
    "OFA-595 (OFA flops@595M subnet), a teacher in the paper: 7.62 M params, 0.52 GMACs at 224")
