"""RoadNet: our lightweight real-time semantic segmentation net, trained from scratch.

Design, driven by what runs fast in ONNX Runtime on a 2-core x86 CPU (see ../shared/ANCHORS.md:
MACs do not predict latency there; PReLU is not fused; conv+BN+ReLU is one kernel):
- only conv + batch norm + ReLU, so every layer fuses into a single kernel at inference;
- a fast "learning to downsample" stem (as in Fast-SCNN) reaching 1/8 resolution in three strided
  convolutions, because full-resolution layers dominate CPU time;
- residual blocks at 1/8 and 1/16 with dilation for a large receptive field without going deeper;
- global context from an image-level pooled vector (as in ParseNet / BiSeNet's context path);
- a light decoder that fuses 1/16 context into 1/8 and 1/4 detail before a 1x1 classifier, then
  bilinear upsampling to the input size, so outputs are logits at input resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


def conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, groups: int = 1) -> nn.Sequential:
    pad = dilation * (k - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with identity shortcut; the second may be dilated."""

    def __init__(self, channels: int, dilation: int = 1):
        super().__init__()
        self.conv1 = conv_bn_relu(channels, channels)
        self.conv2 = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(self.conv1(x)))


@dataclass(frozen=True)
class RoadNetConfig:
    num_classes: int = 11
    stem: tuple[int, int, int] = (16, 32, 64)  # channels at 1/2, 1/4, 1/8
    blocks8: int = 2  # residual blocks at 1/8
    width16: int = 128
    dilations16: tuple[int, ...] = (1, 2, 4, 8)  # one residual block per entry at 1/16
    decoder: int = 64  # channels of the 1/16 and 1/8 decoder
    decoder4: int = 32  # channels at 1/4, where every 3x3 conv costs 4x more than at 1/8

    @classmethod
    def from_dict(cls, values: dict) -> RoadNetConfig:
        """From a config file's or checkpoint's mapping, where YAML gives lists for the tuples."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


class RoadNet(nn.Module):
    def __init__(self, cfg: RoadNetConfig = RoadNetConfig()):
        super().__init__()
        self.cfg = cfg
        c2, c4, c8 = cfg.stem
        self.down2 = conv_bn_relu(3, c2, stride=2)
        self.down4 = conv_bn_relu(c2, c4, stride=2)
        self.down8 = conv_bn_relu(c4, c8, stride=2)
        self.stage8 = nn.Sequential(*[ResidualBlock(c8) for _ in range(cfg.blocks8)])
        self.down16 = conv_bn_relu(c8, cfg.width16, stride=2)
        self.stage16 = nn.Sequential(*[ResidualBlock(cfg.width16, d) for d in cfg.dilations16])
        self.context = conv_bn_relu(cfg.width16, cfg.decoder, k=1)  # from the globally pooled 1/16 features
        self.lateral16 = conv_bn_relu(cfg.width16, cfg.decoder, k=1)
        self.lateral8 = conv_bn_relu(c8, cfg.decoder, k=1)
        self.fuse8 = conv_bn_relu(cfg.decoder, cfg.decoder)
        self.reduce8 = conv_bn_relu(cfg.decoder, cfg.decoder4, k=1)
        self.lateral4 = conv_bn_relu(c4, cfg.decoder4, k=1)
        self.fuse4 = conv_bn_relu(cfg.decoder4, cfg.decoder4)
        self.classifier = nn.Conv2d(cfg.decoder4, cfg.num_classes, 1)
        self.aux = nn.Conv2d(cfg.decoder, cfg.num_classes, 1)  # deep supervision at 1/8, training only

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        size = x.shape[-2:]
        f4 = self.down4(self.down2(x))
        f8 = self.stage8(self.down8(f4))
        f16 = self.stage16(self.down16(f8))
        ctx = self.context(f16.mean(dim=(2, 3), keepdim=True))
        d16 = self.lateral16(f16) + ctx
        d8 = self.fuse8(self.lateral8(f8) + F.interpolate(d16, size=f8.shape[-2:], mode="bilinear", align_corners=False))
        d4 = self.fuse4(self.lateral4(f4) + F.interpolate(self.reduce8(d8), size=f4.shape[-2:], mode="bilinear", align_corners=False))
        logits = F.interpolate(self.classifier(d4), size=size, mode="bilinear", align_corners=False)
        if self.training:
            aux = F.interpolate(self.aux(d8), size=size, mode="bilinear", align_corners=False)
            return logits, aux
        return logits
