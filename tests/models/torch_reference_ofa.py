"""A minimal PyTorch OFA MobileNetV3, written after ``ofa/layers.py`` + ``ofa/utils.py`` (the
version darmo pins) and darmo's ``nsga.MobileNetV3``, with the same module names, so its
``state_dict`` keys are those of real darmo / OFA checkpoints (``eeea-c2.pt``).

Used only as the parity reference for the Keras port; importing it needs torch.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from tfcxr.models.layers import make_divisible
from tfcxr.models.ofa_mobilenet import OFAArch


class HSwish(nn.Module):
    def forward(self, x):
        return x * F.relu6(x + 3.0) / 6.0


class HSigmoid(nn.Module):
    def forward(self, x):
        return F.relu6(x + 3.0) / 6.0


def _act(kind: str) -> nn.Module:
    return nn.ReLU() if kind == "relu" else HSwish()


class SEModule(nn.Module):
    def __init__(self, channel: int):
        super().__init__()
        mid = make_divisible(channel // 4, 8)
        self.fc = nn.Sequential(OrderedDict([
            ("reduce", nn.Conv2d(channel, mid, 1, 1, 0, bias=True)),
            ("relu", nn.ReLU()),
            ("expand", nn.Conv2d(mid, channel, 1, 1, 0, bias=True)),
            ("h_sigmoid", HSigmoid()),
        ]))

    def forward(self, x):
        return x * self.fc(x.mean(3, keepdim=True).mean(2, keepdim=True))


class ConvLayer(nn.Sequential):
    """OFA ConvLayer with ops_order weight_bn_act: children conv, [bn], [act]."""

    def __init__(self, cin, cout, kernel, stride, use_bn, act):
        modules = [("conv", nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False))]
        if use_bn:
            modules.append(("bn", nn.BatchNorm2d(cout)))
        modules.append(("act", _act(act)))
        super().__init__(OrderedDict(modules))


class MBInvertedConvLayer(nn.Module):
    def __init__(self, cin, cout, kernel, stride, mid, act, use_se):
        super().__init__()
        self.inverted_bottleneck = None if mid == cin else nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(cin, mid, 1, 1, 0, bias=False)),
            ("bn", nn.BatchNorm2d(mid)),
            ("act", _act(act)),
        ]))
        depth = [("conv", nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)),
                 ("bn", nn.BatchNorm2d(mid)), ("act", _act(act))]
        if use_se:
            depth.append(("se", SEModule(mid)))
        self.depth_conv = nn.Sequential(OrderedDict(depth))
        self.point_linear = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(mid, cout, 1, 1, 0, bias=False)),
            ("bn", nn.BatchNorm2d(cout)),
        ]))

    def forward(self, x):
        if self.inverted_bottleneck is not None:
            x = self.inverted_bottleneck(x)
        return self.point_linear(self.depth_conv(x))


class MobileInvertedResidualBlock(nn.Module):
    def __init__(self, mobile_inverted_conv, residual: bool):
        super().__init__()
        self.mobile_inverted_conv = mobile_inverted_conv
        self.residual = residual

    def forward(self, x):
        y = self.mobile_inverted_conv(x)
        return y + x if self.residual else y


class LinearLayer(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.linear = nn.Linear(cin, cout)

    def forward(self, x):
        return self.linear(x)


class MobileNetV3(nn.Module):
    def __init__(self, arch: OFAArch, num_classes: int):
        super().__init__()
        self.first_conv = ConvLayer(3, arch.stem, 3, 2, True, "h_swish")
        blocks, cin = [], arch.stem
        for b in arch.blocks:
            conv = MBInvertedConvLayer(cin, b.out, b.kernel, b.stride, b.mid, b.act, b.se)
            blocks.append(MobileInvertedResidualBlock(conv, b.stride == 1 and b.out == cin))
            cin = b.out
        self.blocks = nn.ModuleList(blocks)
        self.final_expand_layer = ConvLayer(cin, arch.final_expand, 1, 1, True, "h_swish")
        self.feature_mix_layer = ConvLayer(arch.final_expand, arch.feature_mix, 1, 1, False, "h_swish")
        self.classifier = LinearLayer(arch.feature_mix, num_classes)

    def forward(self, x):
        x = self.first_conv(x)
        for block in self.blocks:
            x = block(x)
        x = self.final_expand_layer(x)
        x = x.mean(3, keepdim=True).mean(2, keepdim=True)
        x = self.feature_mix_layer(x)
        return self.classifier(torch.flatten(x, 1))


def randomized(model: nn.Module, image_size: int = 64, seed: int = 0) -> nn.Module:
    """Random BN affine terms and biases, BN running statistics measured on random images, eval mode.

    Default BN statistics (mean 0, var 1) on a randomly initialised net shrink the activations
    block after block until the logits no longer depend on the image, and a port that mishandled
    any layer would still "match". Measured statistics keep every layer's signal alive.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.2)
                module.reset_running_stats()
                module.momentum = None  # cumulative average over the calibration pass
            elif isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.2)
        model.train()
        model(torch.randn(16, 3, image_size, image_size, generator=generator))
    return model.eval()
