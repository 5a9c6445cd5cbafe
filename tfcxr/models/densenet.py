"""DenseNet teachers (121, 161, 169, 201), built to match torchvision's DenseNet op for op.

One builder serves every depth, so the paper's teacher (DenseNet161, which keras.applications lacks)
and the Keras-native depths share one graph and one set of layer names. The names are those of
``keras.applications.densenet`` (``conv1/conv``, ``conv2_block1_0_bn``, ``pool2_conv``, ``bn``...),
so a keras.applications ImageNet "notop" file loads by name; ``tfcxr.models.porting.densenet`` maps
torchvision's ``features.denseblock1.denselayer1.norm1`` onto the same names.

Where the two frameworks differ in padding, the graph follows PyTorch: a stride-2 ``padding='same'``
conv in Keras pads asymmetrically (right/bottom only) and would shift every ported feature map.
"""

from __future__ import annotations

from pathlib import Path

import h5py

from tfcxr.backend import keras
from tfcxr.errors import TfcxrError
from tfcxr.models.registry import register_model
from tfcxr.preprocessing import PreprocessingSpec

layers = keras.layers

# torchvision: nn.BatchNorm2d(eps=1e-5, momentum=0.1); Keras' momentum is PyTorch's 1 - momentum.
# keras.applications uses eps 1.001e-5: loading its notop files here changes each normalised value
# by a relative 5e-9 / running_var, negligible (and below float32 resolution for var >= 0.1).
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9

# Five halvings (stem conv, stem max pool, three transitions): a 32-px input ends as a 1x1 map.
MIN_INPUT_SIZE = 32

# The final ReLU after norm5 (the last 4-D activation), named "relu" as in keras.applications.
GRADCAM_LAYER = "relu"

# torchvision initialises convs with kaiming_normal_ (fan_in, ReLU gain); he_normal is the Keras
# counterpart (truncated, same standard deviation).
_CONV_INIT = "he_normal"


def _bn(name: str):
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def _dense_layer(x, growth_rate: int, bn_size: int, name: str):
    """torchvision ``_DenseLayer``: norm1-relu1-conv1 (1x1) - norm2-relu2-conv2 (3x3), then concat.

    Concatenating ``[x, new]`` keeps torchvision's channel order (earliest features first), which
    the 1x1 conv kernels of every later layer depend on.
    """
    y = _bn(f"{name}_0_bn")(x)
    y = layers.Activation("relu", name=f"{name}_0_relu")(y)
    y = layers.Conv2D(bn_size * growth_rate, 1, use_bias=False, kernel_initializer=_CONV_INIT,
                      name=f"{name}_1_conv")(y)
    y = _bn(f"{name}_1_bn")(y)
    y = layers.Activation("relu", name=f"{name}_1_relu")(y)
    # Stride 1: 'same' pads one pixel on every side, exactly PyTorch's padding=1.
    y = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, kernel_initializer=_CONV_INIT,
                      name=f"{name}_2_conv")(y)
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def _transition(x, name: str):
    """torchvision ``_Transition``: norm-relu-conv 1x1 to half the channels, 2x2 average pool."""
    channels = x.shape[-1]
    x = _bn(f"{name}_bn")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.Conv2D(channels // 2, 1, use_bias=False, kernel_initializer=_CONV_INIT,
                      name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def build_densenet(*, growth_rate: int, block_config: tuple[int, ...], num_init_features: int,
                   bn_size: int, num_classes: int, input_shape: tuple[int, int, int],
                   name: str) -> keras.Model:
    """A flat functional DenseNet returning ``num_classes`` logits from a layer named ``logits``."""
    if min(input_shape[:2]) < MIN_INPUT_SIZE:
        raise ValueError(f"{name} needs inputs of at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} "
                         f"pixels (five stride-2 stages); got {input_shape}")
    inputs = keras.Input(shape=input_shape, name="image")
    # conv0: 7x7 stride 2 with PyTorch's symmetric padding 3.
    x = layers.ZeroPadding2D(3, name="conv1/pad")(inputs)
    x = layers.Conv2D(num_init_features, 7, strides=2, use_bias=False,
                      kernel_initializer=_CONV_INIT, name="conv1/conv")(x)
    x = _bn("conv1/bn")(x)
    x = layers.Activation("relu", name="conv1/relu")(x)
    # pool0: PyTorch's MaxPool2d(3, 2, padding=1) pads with -inf. Zeros are equivalent here because
    # the input is a ReLU output (>= 0) and every 3x3 window holds at least one real pixel, so its
    # maximum is >= 0 and a zero pad can never win over it.
    x = layers.ZeroPadding2D(1, name="pool1/pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for block, num_layers in enumerate(block_config):
        stage = block + 2
        for i in range(num_layers):
            x = _dense_layer(x, growth_rate, bn_size, name=f"conv{stage}_block{i + 1}")
        if block != len(block_config) - 1:
            x = _transition(x, name=f"pool{stage}")
    x = _bn("bn")(x)
    x = layers.Activation("relu", name=GRADCAM_LAYER)(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    logits = layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name=name)


def load_keras_imagenet_weights(model: keras.Model, path: str | Path) -> None:
    """Load a keras.applications DenseNet ``..._notop.h5`` file into ``model``'s backbone, by name.

    Only the backbone is loaded; the ``logits`` head keeps its fresh initialisation. The file is
    checked first so that a wrong file (another depth, another architecture) fails loudly instead
    of loading nothing, which Keras' by-name loading would do silently.
    """
    path = Path(path)
    if not path.is_file():
        raise TfcxrError(f"{path}: ImageNet weights file not found")
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            in_file = {n.decode() if isinstance(n, bytes) else n
                       for n in group.attrs["layer_names"]}
    except (OSError, KeyError) as e:
        raise TfcxrError(f"{path}: not a keras.applications HDF5 weights file "
                         f"(the ..._notop.h5 kind): {e}") from None
    missing = [layer.name for layer in model.layers
               if layer.weights and layer.name != "logits" and layer.name not in in_file]
    if missing:
        raise TfcxrError(f"{path}: does not hold {model.name} weights; {len(missing)} layers are "
                         f"missing from it, e.g. {missing[:3]}")
    try:
        model.load_weights(str(path), by_name=True)
    except ValueError as e:
        raise TfcxrError(f"{path}: cannot load into {model.name}: {e}") from None


def _densenet(name: str, growth_rate: int, block_config: tuple[int, ...], num_init_features: int,
              num_classes: int, input_shape, weights_imagenet: str | Path | None) -> keras.Model:
    model = build_densenet(growth_rate=growth_rate, block_config=block_config,
                           num_init_features=num_init_features, bn_size=4,
                           num_classes=num_classes, input_shape=input_shape, name=name)
    if weights_imagenet is not None:
        load_keras_imagenet_weights(model, weights_imagenet)
    return model


_SPEC = PreprocessingSpec(image_size=224)


@register_model("densenet161", role="teacher", preprocessing=_SPEC, gradcam_layer=GRADCAM_LAYER,
                description="The paper's teacher: torchvision DenseNet161 (growth 48, blocks "
                            "6-12-36-24, 96 stem features). Pretrained weights: "
                            "tfcxr port-weights.")
def densenet161(num_classes: int, input_shape, weights_imagenet: str | Path | None = None):
    return _densenet("densenet161", 48, (6, 12, 36, 24), 96, num_classes, input_shape,
                     weights_imagenet)


@register_model("densenet121", role="teacher", preprocessing=_SPEC, gradcam_layer=GRADCAM_LAYER,
                description="DenseNet121 (CheXNet's backbone). Weights: a local keras.applications "
                            "notop .h5 via weights_imagenet=, or tfcxr port-weights.")
def densenet121(num_classes: int, input_shape, weights_imagenet: str | Path | None = None):
    return _densenet("densenet121", 32, (6, 12, 24, 16), 64, num_classes, input_shape,
                     weights_imagenet)


@register_model("densenet169", role="teacher", preprocessing=_SPEC, gradcam_layer=GRADCAM_LAYER,
                description="DenseNet169. Weights: a local keras.applications notop .h5 via "
                            "weights_imagenet=, or tfcxr port-weights.")
def densenet169(num_classes: int, input_shape, weights_imagenet: str | Path | None = None):
    return _densenet("densenet169", 32, (6, 12, 32, 32), 64, num_classes, input_shape,
                     weights_imagenet)


@register_model("densenet201", role="teacher", preprocessing=_SPEC, gradcam_layer=GRADCAM_LAYER,
                description="DenseNet201. Weights: a local keras.applications notop .h5 via "
                            "weights_imagenet=, or tfcxr port-weights.")
def densenet201(num_classes: int, input_shape, weights_imagenet: str | Path | None = None):
    return _densenet("densenet201", 32, (6, 12, 48, 32), 64, num_classes, input_shape,
                     weights_imagenet)
