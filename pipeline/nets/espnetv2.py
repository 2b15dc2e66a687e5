"""ESPNetv2 segmentation (Mehta et al., CVPR 2019) written for loading the official pretrained
state_dicts of sacmehta/EdgeNets (``ESPNetv2Segmentation``) by key name, and for ONNX export.

Architecture, as in the paper and that code:

- EESP unit: grouped 1x1 reduction to nout/4 channels, four depth-wise 3x3 branches whose dilation
  grows with the branch (capped by a per-level receptive-field limit), hierarchical fusion (each
  branch adds the previous one), batch norm + PReLU, grouped 1x1 expansion, identity shortcut;
- strided unit: concatenates a 3x3 average pool of the input with a stride-2 EESP unit and adds a
  projection of the input image average-pooled to the same scale ("input reinforcement");
- encoder levels at 1/2 .. 1/16, decoder: an efficient pyramid pooling module (EfficientPyrPool) at
  each level, bilinear 2x upsampling, and encoder skips gated by a global-pool sigmoid
  (EfficientPWConv), then a bilinear upsample to the input size.

Two deliberate differences from the reference code, both exactly equivalent for the input sizes
this net supports (sides divisible by 16):

- the pooled input images for input reinforcement are computed once as a pyramid instead of being
  re-pooled from the full image at every level;
- adaptive average pooling to a size that does not divide the input (the pyramid pool's 1.5x and
  0.5x/0.1x branches) is written with fixed-size average pools and index gathers
  (:func:`adaptive_avg_pool2d_static`), because ONNX has no adaptive pooling.

Batch norms use torch's default eps (1e-5) as in the original code.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

# Channels at levels 1..4 per width scale s (the ImageNet model's levels 5+ are not used).
SCALE_CHANNELS: dict[float, tuple[int, int, int, int]] = {
    0.5: (16, 32, 64, 128),
    1.0: (32, 64, 128, 256),
    1.25: (32, 80, 160, 320),
    1.5: (32, 96, 192, 384),
    2.0: (32, 128, 256, 512),
}
BRANCHES = 4  # parallel branches (and groups of the 1x1 convolutions) in every EESP unit
LEVEL3_UNITS, LEVEL4_UNITS = 3, 7
# Largest receptive field (effective kernel size) a branch may have: for the strided units of levels
# 2, 3, 4 and the units of levels 3 and 4.
RECEPTIVE_LIMIT = {"down2": 13, "down3": 11, "level3": 9, "down4": 9, "level4": 7}
PYRAMID_SCALES = (2.0, 1.5, 1.0, 0.5, 0.1)
PYRAMID_MIN_SIDE = 5  # the pyramid pool never resizes a side below this
INPUT_MULTIPLE = 16


class ConvBN(nn.Module):
    """Bias-free 'same' convolution + batch norm, with PReLU when ``act`` (keys conv/bn/act)."""

    def __init__(self, nin: int, nout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(nin, nout, k, stride=stride, padding=(k - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(nout)
        self.act = nn.PReLU(nout) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        return self.act(y) if self.act is not None else y


class BNAct(nn.Module):
    """Batch norm + PReLU (keys bn/act)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


class DilatedDepthwise(nn.Module):
    """Depth-wise 3x3 convolution with dilation ``d`` (key conv)."""

    def __init__(self, channels: int, stride: int, d: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=stride, padding=d, dilation=d, groups=channels,
                              bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def branch_dilations(k: int, receptive_limit: int) -> list[int]:
    """Dilation of each EESP branch: branch i would be a (3+2i)x(3+2i) kernel (dilation i+1); kernels
    beyond the limit fall back to 3x3; sorted by receptive field so fusion adds small to large."""
    sizes = sorted(s if s <= receptive_limit else 3 for s in (3 + 2 * i for i in range(k)))
    return [(s - 1) // 2 for s in sizes]


class EESP(nn.Module):
    """Extremely efficient spatial pyramid unit. ``forward`` is the stride-1 unit (shortcut + PReLU);
    strided units are used through :meth:`expand` by :class:`StridedEESP`, which makes the final
    PReLU (``module_act``) unused there; it is kept so that official checkpoints load strictly."""

    def __init__(self, nin: int, nout: int, stride: int, receptive_limit: int, k: int = BRANCHES):
        super().__init__()
        n = nout // k
        if n * k != nout:
            raise ValueError(f"EESP: {nout} output channels do not split into {k} branches")
        self.proj_1x1 = ConvBN(nin, n, 1, groups=k)
        self.spp_dw = nn.ModuleList(DilatedDepthwise(n, stride, d) for d in branch_dilations(k, receptive_limit))
        self.conv_1x1_exp = ConvBN(nout, nout, 1, groups=k, act=False)
        self.br_after_cat = BNAct(nout)
        self.module_act = nn.PReLU(nout)

    def expand(self, x: torch.Tensor) -> torch.Tensor:
        r = self.proj_1x1(x)
        fused = [self.spp_dw[0](r)]
        for branch in self.spp_dw[1:]:
            fused.append(fused[-1] + branch(r))
        return self.conv_1x1_exp(self.br_after_cat(torch.cat(fused, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module_act(self.expand(x) + x)


class StridedEESP(nn.Module):
    """Halves the resolution: [3x3 average pool of x, strided EESP of x] + projection of the image
    at the output scale, then PReLU. (The official class is ``DownSampler``.)"""

    def __init__(self, nin: int, nout: int, receptive_limit: int):
        super().__init__()
        self.eesp = EESP(nin, nout - nin, stride=2, receptive_limit=receptive_limit)
        self.inp_reinf = nn.Sequential(ConvBN(3, 3, 3), ConvBN(3, nout, 1, act=False))
        self.act = nn.PReLU(nout)

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(x, 3, stride=2, padding=1)
        return self.act(torch.cat([pooled, self.eesp.expand(x)], 1) + self.inp_reinf(image))


class EESPNetBase(nn.Module):
    """The ESPNetv2 ImageNet backbone up to level 4 (1/16 resolution)."""

    def __init__(self, scale: float):
        super().__init__()
        if scale not in SCALE_CHANNELS:
            raise ValueError(f"ESPNetv2: unsupported scale s={scale} (known: {sorted(SCALE_CHANNELS)})")
        c1, c2, c3, c4 = SCALE_CHANNELS[scale]
        self.channels = (c1, c2, c3, c4)
        self.level1 = ConvBN(3, c1, 3, stride=2)
        self.level2_0 = StridedEESP(c1, c2, RECEPTIVE_LIMIT["down2"])
        self.level3_0 = StridedEESP(c2, c3, RECEPTIVE_LIMIT["down3"])
        self.level3 = nn.ModuleList(EESP(c3, c3, 1, RECEPTIVE_LIMIT["level3"]) for _ in range(LEVEL3_UNITS))
        self.level4_0 = StridedEESP(c3, c4, RECEPTIVE_LIMIT["down4"])
        self.level4 = nn.ModuleList(EESP(c4, c4, 1, RECEPTIVE_LIMIT["level4"]) for _ in range(LEVEL4_UNITS))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features at 1/2, 1/4, 1/8 and 1/16 resolution."""
        images = [x]
        for _ in range(4):
            images.append(F.avg_pool2d(images[-1], 3, stride=2, padding=1))
        l1 = self.level1(x)
        l2 = self.level2_0(l1, images[2])
        l3 = self.level3_0(l2, images[3])
        for unit in self.level3:
            l3 = unit(l3)
        l4 = self.level4_0(l3, images[4])
        for unit in self.level4:
            l4 = unit(l4)
        return l1, l2, l3, l4


def _pool_regions(n_in: int, n_out: int) -> tuple[list[int], list[int]]:
    """Start and length of each adaptive-pooling window along one axis (torch's definition:
    [floor(i*n_in/n_out), ceil((i+1)*n_in/n_out)))."""
    starts = [i * n_in // n_out for i in range(n_out)]
    ends = [-(-(i + 1) * n_in // n_out) for i in range(n_out)]
    return starts, [e - s for s, e in zip(starts, ends)]


def _adaptive_avg_pool_axis(x: torch.Tensor, axis: int, n_out: int) -> torch.Tensor:
    n_in = x.shape[axis]
    if n_in % n_out == 0:  # equal, non-overlapping windows: a plain strided average pool
        k = n_in // n_out
        kernel = (k, 1) if axis == 2 else (1, k)
        return F.avg_pool2d(x, kernel, stride=kernel)
    starts, lengths = _pool_regions(n_in, n_out)
    pieces, order = [], []
    for length in sorted(set(lengths)):
        idx = [i for i, n in enumerate(lengths) if n == length]
        kernel = (length, 1) if axis == 2 else (1, length)
        means = F.avg_pool2d(x, kernel, stride=1)  # mean of every window of this length
        pieces.append(torch.index_select(means, axis, torch.tensor([starts[i] for i in idx], device=x.device)))
        order += idx
    out = torch.cat(pieces, axis) if len(pieces) > 1 else pieces[0]
    if order != sorted(order):
        inverse = sorted(range(len(order)), key=order.__getitem__)
        out = torch.index_select(out, axis, torch.tensor(inverse, device=x.device))
    return out


def adaptive_avg_pool2d_static(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, size)`` for a fixed input size, in ops ONNX has.

    Adaptive pooling averages rectangles that are products of per-axis windows, so it separates into
    a pool over rows then over columns. Along one axis the windows have at most a few distinct
    lengths; for each length a stride-1 average pool computes every window's mean and a gather picks
    the windows that start where torch's do. The result equals torch's up to float rounding.
    """
    return _adaptive_avg_pool_axis(_adaptive_avg_pool_axis(x, 2, size[0]), 3, size[1])


class SeqCBR(nn.Module):
    """Convolution + batch norm + PReLU as one Sequential named ``cbr`` (EdgeNets' cnn_utils layout)."""

    def __init__(self, nin: int, nout: int, k: int, groups: int = 1):
        super().__init__()
        self.cbr = nn.Sequential(nn.Conv2d(nin, nout, k, padding=(k - 1) // 2, groups=groups, bias=False),
                                 nn.BatchNorm2d(nout), nn.PReLU(nout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cbr(x)


class SeqBR(nn.Module):
    """Batch norm + PReLU as one Sequential named ``br``."""

    def __init__(self, channels: int):
        super().__init__()
        self.br = nn.Sequential(nn.BatchNorm2d(channels), nn.PReLU(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.br(x)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class EfficientPyrPool(nn.Module):
    """Project to few channels, run a depth-wise 3x3 at five scales of the map (2x, 1.5x, 1x, 0.5x,
    0.1x; sides at least 5), bring each back to the map's size, merge with a shuffled group conv."""

    def __init__(self, in_planes: int, proj_planes: int, out_planes: int, last_layer_br: bool = True):
        super().__init__()
        n = len(PYRAMID_SCALES)
        self.projection_layer = SeqCBR(in_planes, proj_planes, 1)
        self.stages = nn.ModuleList(
            nn.Conv2d(proj_planes, proj_planes, 3, padding=1, groups=proj_planes, bias=False) for _ in range(n))
        self.merge_layer = nn.Sequential(
            SeqBR(proj_planes * n),
            ChannelShuffle(n),
            SeqCBR(proj_planes * n, proj_planes, 3, groups=proj_planes),
            nn.Conv2d(proj_planes, out_planes, 1, bias=not last_layer_br),
        )
        self.br = SeqBR(out_planes) if last_layer_br else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.projection_layer(x)
        h, w = x.shape[2:]
        outs = []
        for scale, stage in zip(PYRAMID_SCALES, self.stages):
            hs = max(math.ceil(h * scale), PYRAMID_MIN_SIDE)
            ws = max(math.ceil(w * scale), PYRAMID_MIN_SIDE)
            if scale < 1.0:
                y = stage(adaptive_avg_pool2d_static(x, (hs, ws)))
                y = F.interpolate(y, (h, w), mode="bilinear", align_corners=True)
            elif scale > 1.0:
                y = stage(F.interpolate(x, (hs, ws), mode="bilinear", align_corners=True))
                y = adaptive_avg_pool2d_static(y, (h, w))
            else:
                y = stage(x)
            outs.append(y)
        out = self.merge_layer(torch.cat(outs, 1))
        return self.br(out) if self.br is not None else out


class EfficientPWConv(nn.Module):
    """Encoder skip: grouped 3x3 expansion, scaled per channel by a sigmoid of the global average."""

    def __init__(self, nin: int, nout: int):
        super().__init__()
        self.wt_layer = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(nin, nout, 1, bias=False), nn.Sigmoid())
        self.expansion_layer = SeqCBR(nin, nout, 3, groups=math.gcd(nin, nout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expansion_layer(x) * self.wt_layer(x)


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, (2 * x.shape[2], 2 * x.shape[3]), mode="bilinear", align_corners=True)


class ESPNetv2Segmentation(nn.Module):
    """NCHW image in (sides divisible by 16), NxCxHxW class scores out.

    ``decoder_base`` is EdgeNets' per-dataset decoder width (16 for Cityscapes and PASCAL, 32 for COCO).
    """

    def __init__(self, scale: float, classes: int, decoder_base: int = 16):
        super().__init__()
        self.base_net = EESPNetBase(scale)
        c1, c2, c3, c4 = self.base_net.channels
        dec = (4 * decoder_base, 3 * decoder_base, 2 * decoder_base)
        proj = min(classes // 2, decoder_base)
        self.bu_dec_l1 = EfficientPyrPool(c4, proj, dec[0])
        self.bu_dec_l2 = EfficientPyrPool(dec[0], proj, dec[1])
        self.bu_dec_l3 = EfficientPyrPool(dec[1], proj, dec[2])
        self.bu_dec_l4 = EfficientPyrPool(dec[2], proj, classes, last_layer_br=False)
        self.merge_enc_dec_l2 = EfficientPWConv(c3, dec[0])
        self.merge_enc_dec_l3 = EfficientPWConv(c2, dec[1])
        self.merge_enc_dec_l4 = EfficientPWConv(c1, dec[2])
        self.bu_br_l2 = nn.Sequential(nn.BatchNorm2d(dec[0]), nn.PReLU(dec[0]))
        self.bu_br_l3 = nn.Sequential(nn.BatchNorm2d(dec[1]), nn.PReLU(dec[1]))
        self.bu_br_l4 = nn.Sequential(nn.BatchNorm2d(dec[2]), nn.PReLU(dec[2]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l1, l2, l3, l4 = self.base_net(x)
        y = self.bu_dec_l1(l4)
        y = self.bu_dec_l2(self.bu_br_l2(self.merge_enc_dec_l2(l3) + _up2(y)))
        y = self.bu_dec_l3(self.bu_br_l3(self.merge_enc_dec_l3(l2) + _up2(y)))
        y = self.bu_dec_l4(self.bu_br_l4(self.merge_enc_dec_l4(l1) + _up2(y)))
        return F.interpolate(y, x.shape[2:], mode="bilinear", align_corners=True)
