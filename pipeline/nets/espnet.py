"""ESPNet (Mehta et al., ECCV 2018) written for loading the official pretrained state_dicts.

Module and attribute names follow the official repository (sacmehta/ESPNet) so that its checkpoints
load by key name with no renaming; the layer arithmetic follows the paper and that code:

- an ESP module reduces channels with one convolution, runs five 3x3 convolutions with dilation
  1, 2, 4, 8, 16 on the result, sums the dilated outputs hierarchically (2, 2+4, 2+4+8, ...) so
  that the large dilations do not grid, concatenates, and finishes with batch norm + PReLU;
- the encoder (ESPNet-C) reaches 1/8 resolution and re-injects the image, average-pooled to the
  1/2 and 1/4 scales, at the first two stages;
- the decoder projects the 1/8 and 1/4 features to class scores, merges them with transposed
  convolutions, and at 1/2 resolution concatenates the first-stage features before the final
  transposed convolution back to full size.

The official repository has two decoder variants: `test/Model.py` concatenates the 16 level-1
features (the published Cityscapes checkpoints), `train/Model.py` the 19 channels of level-1 features
plus pooled image after their batch norm + PReLU (the CamVid checkpoint). ``skip_includes_image``
selects between them. All batch norms use eps 1e-3 as in the original code.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

BN_EPS = 1e-3


class Conv(nn.Module):
    """Bias-free 'same' convolution (keys ``conv.weight``)."""

    def __init__(self, nin: int, nout: int, k: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        pad = (k - 1) // 2 * dilation
        self.conv = nn.Conv2d(nin, nout, k, stride=stride, padding=pad, dilation=dilation, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class BR(nn.Module):
    """Batch norm + PReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


class CBR(nn.Module):
    """Convolution + batch norm + PReLU."""

    def __init__(self, nin: int, nout: int, k: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(nin, nout, k, stride=stride, padding=(k - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(nout, eps=BN_EPS)
        self.act = nn.PReLU(nout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class _DilatedPyramid(nn.Module):
    """Reduce, then five parallel dilated 3x3 convolutions with hierarchical feature fusion.

    The reduction gives n = nout // 5 channels; the dilation-1 branch takes up the remainder so the
    concatenation has exactly ``nout`` channels. Branch names d1..d16 are the dilation rates.
    """

    def __init__(self, nin: int, nout: int, reduce_k: int, stride: int):
        super().__init__()
        n = nout // 5
        self.c1 = Conv(nin, n, reduce_k, stride)
        self.d1 = Conv(n, nout - 4 * n, 3, dilation=1)
        self.d2 = Conv(n, n, 3, dilation=2)
        self.d4 = Conv(n, n, 3, dilation=4)
        self.d8 = Conv(n, n, 3, dilation=8)
        self.d16 = Conv(n, n, 3, dilation=16)

    def pyramid(self, x: torch.Tensor) -> torch.Tensor:
        r = self.c1(x)
        fused = [self.d2(r)]
        for branch in (self.d4, self.d8, self.d16):
            fused.append(fused[-1] + branch(r))
        return torch.cat([self.d1(r), *fused], 1)


class ESPDownsampler(_DilatedPyramid):
    """Strided ESP module (halves the resolution; reduction is a 3x3 stride-2 convolution)."""

    def __init__(self, nin: int, nout: int):
        super().__init__(nin, nout, reduce_k=3, stride=2)
        self.bn = nn.BatchNorm2d(nout, eps=BN_EPS)
        self.act = nn.PReLU(nout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.pyramid(x)))


class ESPBlock(_DilatedPyramid):
    """ESP module at constant resolution, with the identity shortcut when ``residual``."""

    def __init__(self, nin: int, nout: int, residual: bool = True):
        super().__init__(nin, nout, reduce_k=1, stride=1)
        self.bn = BR(nout)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pyramid(x)
        return self.bn(x + y if self.residual else y)


def _half_image(x: torch.Tensor) -> torch.Tensor:
    """The input-projection pooling: 3x3 average, stride 2, zero padding counted (as the original)."""
    return F.avg_pool2d(x, 3, stride=2, padding=1)


def _run(blocks: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    for block in blocks:
        x = block(x)
    return x


class ESPNetEncoder(nn.Module):
    """ESPNet-C: to 1/8 resolution. ``forward`` returns what the decoder reads: level-1 features,
    their concatenation with the half-size image (after BR), the 1/4-scale concatenation (after BR)
    and the 1/8-scale concatenation (after BR). ``classifier`` scores the last one."""

    def __init__(self, classes: int, p: int, q: int):
        super().__init__()
        if p < 1 or q < 1:
            raise ValueError(f"ESPNet needs p >= 1 and q >= 1 (got p={p}, q={q})")
        self.level1 = CBR(3, 16, 3, stride=2)
        self.b1 = BR(16 + 3)
        self.level2_0 = ESPDownsampler(16 + 3, 64)
        self.level2 = nn.ModuleList(ESPBlock(64, 64) for _ in range(p))
        self.b2 = BR(128 + 3)
        self.level3_0 = ESPDownsampler(128 + 3, 128)
        self.level3 = nn.ModuleList(ESPBlock(128, 128) for _ in range(q))
        self.b3 = BR(256)
        self.classifier = Conv(256, classes, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        image_2 = _half_image(x)
        image_4 = _half_image(image_2)
        level1 = self.level1(x)
        cat1 = self.b1(torch.cat([level1, image_2], 1))
        down2 = self.level2_0(cat1)
        cat2 = self.b2(torch.cat([_run(self.level2, down2), down2, image_4], 1))
        down3 = self.level3_0(cat2)
        cat3 = self.b3(torch.cat([down3, _run(self.level3, down3)], 1))
        return level1, cat1, cat2, cat3


class ESPNet(nn.Module):
    """ESPNet with its light-weight decoder: NCHW image in, NxCxHxW class scores out (H, W divisible by 8).

    ``classes`` counts output channels including any background/void channel the checkpoint has.
    """

    def __init__(self, classes: int, p: int = 2, q: int = 8, skip_includes_image: bool = False):
        super().__init__()
        self.skip_includes_image = skip_includes_image
        self.encoder = ESPNetEncoder(classes, p, q)
        self.level3_C = Conv(128 + 3, classes, 1)
        self.br = nn.BatchNorm2d(classes, eps=BN_EPS)
        self.conv = CBR((19 if skip_includes_image else 16) + classes, classes, 3)
        self.up_l3 = nn.Sequential(nn.ConvTranspose2d(classes, classes, 2, stride=2, bias=False))
        self.combine_l2_l3 = nn.Sequential(BR(2 * classes), ESPBlock(2 * classes, classes, residual=False))
        self.up_l2 = nn.Sequential(nn.ConvTranspose2d(classes, classes, 2, stride=2, bias=False), BR(classes))
        self.classifier = nn.ConvTranspose2d(classes, classes, 2, stride=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        level1, cat1, cat2, cat3 = self.encoder(x)
        scores_8 = self.up_l3(self.br(self.encoder.classifier(cat3)))
        scores_4 = self.up_l2(self.combine_l2_l3(torch.cat([self.level3_C(cat2), scores_8], 1)))
        skip = cat1 if self.skip_includes_image else level1
        return self.classifier(self.conv(torch.cat([scores_4, skip], 1)))
