"""The backbones YOLACT and YolactEdge use, written so that their official state_dict keys load by name.

Key layout (what decides the module and attribute names below):
- ResNet-50/101 (dbolya/yolact backbone.py): ``conv1``, ``bn1``, then ``layers.{stage}.{block}.conv1..bn3``
  and ``downsample.0`` (1x1 conv) / ``downsample.1`` (batch norm) on the first block of a stage.
- MobileNetV2 (YolactEdge backbone.py, torchvision's layout re-indexed): ``layers.0`` is the stem
  conv-BN-ReLU6, ``layers.1..7`` the seven inverted-residual groups, ``layers.8`` the 1x1 conv to 1280.
- DarkNet-53 (dbolya/yolact backbone.py): ``_preconv`` then ``layers.{stage}.0`` (strided conv-BN-leaky)
  followed by residual blocks with ``conv1`` / ``conv2``.

Every backbone exposes ``channels`` and ``strides`` (log2 of the downsampling) per entry of ``layers``
and ``forward(x, last)`` that runs only up to stage ``last``: layers after the deepest selected stage
(MobileNetV2's 320- and 1280-channel tail) are still in the checkpoints, so they exist here for the
strict key match, but computing them would be wasted work.
"""

from __future__ import annotations

import torch
from torch import nn

RESNET_DEPTHS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}
# t (expansion), c (channels), n (blocks), s (stride) of torchvision's MobileNetV2, as YolactEdge uses them.
MOBILENETV2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1))
DARKNET53_BLOCKS = (1, 2, 8, 8, 4)


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3 convolution), as in torchvision and the official code."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ResNetBackbone(nn.Module):
    def __init__(self, depths: tuple[int, ...]):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layers = nn.ModuleList()
        self.channels: list[int] = []
        self.strides: list[int] = []
        inplanes = 64
        for stage, blocks in enumerate(depths):
            planes, stride = 64 * 2 ** stage, 1 if stage == 0 else 2
            out = planes * Bottleneck.expansion
            downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))
            group = [Bottleneck(inplanes, planes, stride, downsample)]
            group += [Bottleneck(out, planes) for _ in range(blocks - 1)]
            self.layers.append(nn.Sequential(*group))
            inplanes = out
            self.channels.append(out)
            self.strides.append(stage + 2)

    def forward(self, x: torch.Tensor, last: int) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for layer in self.layers[: last + 1]:
            x = layer(x)
            outs.append(x)
        return outs


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding for width multipliers: nearest multiple, never 10 % below."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn_relu6(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = [conv_bn_relu6(cin, hidden, k=1)] if expand != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2Backbone(nn.Module):
    """``width`` scales every stage (1.0 for YolactEdge's checkpoints; smaller for our own road model)."""

    def __init__(self, width: float = 1.0, setting: tuple[tuple[int, int, int, int], ...] = MOBILENETV2_SETTING):
        super().__init__()
        cin = make_divisible(32 * width)
        self.layers = nn.ModuleList([conv_bn_relu6(3, cin, stride=2)])
        self.channels, self.strides = [cin], [1]
        for t, c, n, s in setting:
            cout = make_divisible(c * width)
            blocks = [InvertedResidual(cin if i == 0 else cout, cout, s if i == 0 else 1, t) for i in range(n)]
            self.layers.append(nn.Sequential(*blocks))
            cin = cout
            self.channels.append(cout)
            self.strides.append(self.strides[-1] + (s == 2))
        last = make_divisible(1280 * max(1.0, width))
        self.layers.append(conv_bn_relu6(cin, last, k=1))
        self.channels.append(last)
        self.strides.append(self.strides[-1])

    def forward(self, x: torch.Tensor, last: int) -> list[torch.Tensor]:
        outs = []
        for layer in self.layers[: last + 1]:
            x = layer(x)
            outs.append(x)
        return outs


def conv_bn_leaky(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.1, inplace=True))


class DarkNetBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv_bn_leaky(channels, channels // 2, 1)
        self.conv2 = conv_bn_leaky(channels // 2, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x)) + x


class DarkNetBackbone(nn.Module):
    def __init__(self, blocks: tuple[int, ...] = DARKNET53_BLOCKS):
        super().__init__()
        self._preconv = conv_bn_leaky(3, 32, 3)
        self.layers = nn.ModuleList()
        self.channels: list[int] = []
        self.strides: list[int] = []
        cin = 32
        for stage, n in enumerate(blocks):
            cout = 64 * 2 ** stage
            self.layers.append(nn.Sequential(conv_bn_leaky(cin, cout, 3, stride=2), *[DarkNetBlock(cout) for _ in range(n)]))
            cin = cout
            self.channels.append(cout)
            self.strides.append(stage + 1)

    def forward(self, x: torch.Tensor, last: int) -> list[torch.Tensor]:
        x = self._preconv(x)
        outs = []
        for layer in self.layers[: last + 1]:
            x = layer(x)
            outs.append(x)
        return outs


def build_backbone(kind: str, width: float = 1.0) -> nn.Module:
    if kind in RESNET_DEPTHS:
        return ResNetBackbone(RESNET_DEPTHS[kind])
    if kind == "mobilenetv2":
        return MobileNetV2Backbone(width)
    if kind == "darknet53":
        return DarkNetBackbone()
    raise ValueError(f"unknown YOLACT backbone '{kind}' (known: {', '.join([*RESNET_DEPTHS, 'mobilenetv2', 'darknet53'])})")
