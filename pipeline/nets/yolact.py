"""YOLACT (Bolya et al., ICCV 2019) and YolactEdge, written to load the official checkpoints by key name.

Facts from dbolya/yolact (yolact.py, data/config.py) and haotian-liu/yolact_edge that decide exactness:
- FPN on three backbone stages: 1x1 lateral convs (``fpn.lat_layers``, stored deepest first), top-down
  sum with bilinear upsampling *to the lateral's size* (550 gives 18 -> 35 -> 69, not a factor of 2),
  3x3 ``pred_layers`` followed by ReLU, then two stride-2 3x3 ``downsample_layers`` on P5 (no ReLU) for
  P6 and P7.
- ProtoNet on P3: three 3x3 conv+ReLU, x2 bilinear upsampling + ReLU, 3x3 conv+ReLU, 1x1 conv to k=32,
  then ReLU; indices in ``proto_net`` follow the official Sequential (upsampling at 6, ReLUs between).
- One prediction head shared by all levels (``prediction_layers.0``): 3x3 conv+ReLU (``upfeature.0``),
  then 3x3 convs for box offsets, class scores (background first) and mask coefficients (tanh).
  Outputs are flattened per level, per y, per x, per anchor.
- Anchors ("priors") are centre-size boxes normalised to [0, 1]. v1 configs give each level one pixel
  scale and aspect ratios (1, 1/2, 2), with width scale * sqrt(ar) / max_size and, through a kept bug
  (``use_square_anchors``), height equal to the *normalised* width.
- ``semantic_seg_conv`` (1x1 on P3) only feeds a training loss; it is in every checkpoint.

The eval-mode forward returns what the ONNX file carries (softmax scores, tanh coefficients, prototypes
in HWC); the training-mode forward returns raw class logits and the semantic logits for the losses.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.nets.yolact_backbones import build_backbone

V1_ASPECT_RATIOS = (1.0, 0.5, 2.0)
V1_SCALES_550 = (24, 48, 96, 192, 384)  # anchor side in pixels at 550x550, P3..P7


@dataclass(frozen=True)
class YolactConfig:
    """Everything that fixes the architecture, the anchors and the checkpoint layout.

    ``num_classes`` counts thing classes only; the class-score output has ``num_classes + 1``
    columns with background first (the official ``cfg.num_classes`` includes background).
    """

    name: str
    backbone: Literal["resnet50", "resnet101", "mobilenetv2", "darknet53"]
    selected_layers: tuple[int, int, int]  # backbone stages feeding P3, P4, P5
    num_classes: int = 80
    input_size: tuple[int, int] = (550, 550)  # width, height the image is stretched to
    backbone_width: float = 1.0  # MobileNetV2 width multiplier
    fpn_channels: int = 256
    num_downsample: int = 2  # P6, P7
    proto_channels: int = 256
    mask_dim: int = 32  # k prototypes
    head_channels: int = 256
    anchor_scales: tuple[float, ...] = V1_SCALES_550  # pixels, one per FPN level
    aspect_ratios: tuple[float, ...] = V1_ASPECT_RATIOS
    anchor_norm: tuple[float, float] = (550.0, 550.0)  # the official cfg.max_size the scales are divided by
    square_anchors: bool = True  # the official v1 bug: height = normalised width
    # Ours only: every 3x3 convolution after the backbone (FPN outputs, ProtoNet, prediction head) factorised
    # into a depthwise 3x3 and a pointwise 1x1, as MobileNet/SSDLite do. Those convolutions are ~70 % of the
    # dense road net's CPU time, so factorising them pays for a larger input (small objects); official
    # checkpoints are dense.
    separable: bool = False
    checkpoint_layout: Literal["yolact", "yolact_edge"] = "yolact"  # YolactEdge names fpn fpn_phase_1/2

    @property
    def levels(self) -> int:
        return len(self.selected_layers) + self.num_downsample

    @property
    def anchors_per_cell(self) -> int:
        return len(self.aspect_ratios)

    def __post_init__(self) -> None:
        if len(self.anchor_scales) != self.levels:
            raise ValueError(f"config {self.name}: {len(self.anchor_scales)} anchor scales for {self.levels} FPN levels")


def _v1(name: str, backbone: str, selected: tuple[int, int, int], **kw) -> YolactConfig:
    return YolactConfig(name=name, backbone=backbone, selected_layers=selected, **kw)


def _resized(cfg: YolactConfig, name: str, size: int) -> YolactConfig:
    """yolact_im400 / im700: the base net trained at another size, anchor pixels scaled and truncated as
    data/config.py does (``int(x / 550 * size)``)."""
    return replace(cfg, name=name, input_size=(size, size), anchor_norm=(float(size), float(size)),
                   anchor_scales=tuple(float(int(s / 550 * size)) for s in V1_SCALES_550))


_BASE = _v1("yolact_base", "resnet101", (1, 2, 3))
CONFIGS: dict[str, YolactConfig] = {
    c.name: c for c in (
        _BASE,
        _v1("yolact_resnet50", "resnet50", (1, 2, 3)),
        _v1("yolact_darknet53", "darknet53", (2, 3, 4)),
        _v1("yolact_resnet50_pascal", "resnet50", (1, 2, 3), num_classes=20, square_anchors=False,
            anchor_scales=(32.0, 64.0, 128.0, 256.0, 512.0)),
        _resized(_BASE, "yolact_im400", 400),
        _resized(_BASE, "yolact_im700", 700),
        _v1("yolact_edge", "resnet101", (1, 2, 3), checkpoint_layout="yolact_edge"),
        _v1("yolact_edge_resnet50", "resnet50", (1, 2, 3), checkpoint_layout="yolact_edge"),
        _v1("yolact_edge_mobilenetv2", "mobilenetv2", (3, 4, 6), checkpoint_layout="yolact_edge"),
        # Ours: a half-width MobileNetV2 at 640x352 (a 640x360 frame at its own width; 16:9 cameras barely
        # stretched) with thinner FPN / ProtoNet / head, road classes (CamVid naming), rectangular anchors (no
        # square-anchor bug) in input pixels; trained by tools/train_yolact.py, its first two stages at 384x384.
        # The fourth, tall aspect ratio (width/height 1/4) is for pedestrians and cyclists: a distant pedestrian
        # is ~6x21 px and no 1:2 anchor overlaps it by IoU 0.5. It comes last so a checkpoint trained with the
        # first three warm-starts this net (pipeline/train/warm_start.py).
        YolactConfig(name="edgeseg_yolact_road", backbone="mobilenetv2", selected_layers=(3, 4, 6), num_classes=3,
                     input_size=(640, 352), backbone_width=0.5, fpn_channels=96, proto_channels=64,
                     head_channels=96, anchor_scales=(16.0, 32.0, 64.0, 128.0, 256.0), anchor_norm=(640.0, 352.0),
                     aspect_ratios=(1.0, 0.5, 2.0, 0.25), square_anchors=False),
    )
}
# Official configs we cannot build, with the reason (their checkpoints are named after them).
UNSUPPORTED = {
    "yolact_plus": "YOLACT++ needs deformable convolutions (DCNv2), which ONNX Runtime cannot run",
    "yolact_edge_vid": "YolactEdge video models add an optical-flow network, which this importer does not build",
    "yolact_edge_youtubevis": "YolactEdge video models add an optical-flow network, which this importer does not build",
}


def config_by_name(name: str) -> YolactConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise KeyError(f"unknown YOLACT config {name!r} (known: {', '.join(CONFIGS)})") from None


def feature_sizes(cfg: YolactConfig, strides: list[int]) -> list[tuple[int, int]]:
    """(h, w) of P3..P7: every stride-2 layer in these nets (3x3 pad 1, 1x1 pad 0, 7x7 pad 3, 3x3 max-pool
    pad 1) maps n to ceil(n / 2)."""
    w, h = cfg.input_size

    def halve(n: int, times: int) -> int:
        for _ in range(times):
            n = -(-n // 2)
        return n

    exps = [strides[i] for i in cfg.selected_layers]
    exps += [exps[-1] + d + 1 for d in range(cfg.num_downsample)]
    return [(halve(h, e), halve(w, e)) for e in exps]


def make_priors(cfg: YolactConfig, sizes: list[tuple[int, int]]) -> torch.Tensor:
    """(P, 4) cx, cy, w, h in [0, 1], ordered per level, per y, per x, per aspect ratio (the order of the
    head outputs). Computed in float64 and rounded once, as the official Python loop does."""
    norm_w, norm_h = cfg.anchor_norm
    per_level = []
    for (fh, fw), scale in zip(sizes, cfg.anchor_scales):
        ys, xs = torch.meshgrid((torch.arange(fh, dtype=torch.float64) + 0.5) / fh,
                                (torch.arange(fw, dtype=torch.float64) + 0.5) / fw, indexing="ij")
        ar = torch.tensor(cfg.aspect_ratios, dtype=torch.float64).sqrt()
        aw = scale * ar / norm_w
        ah = aw if cfg.square_anchors else scale / ar / norm_h
        n = fh * fw
        boxes = torch.stack([xs.reshape(n, 1).expand(n, len(ar)), ys.reshape(n, 1).expand(n, len(ar)),
                             aw.expand(n, len(ar)), ah.expand(n, len(ar))], dim=-1)
        per_level.append(boxes.reshape(-1, 4))
    return torch.cat(per_level).float()


def conv3x3(cin: int, cout: int, separable: bool) -> nn.Module:
    """A 3x3 convolution (padding 1), or its depthwise-separable factorisation: a depthwise 3x3 without bias
    (``.0``) then a pointwise 1x1 with bias (``.1``). No activation between them, so it drops in wherever the
    dense convolution stood, ReLU placement unchanged."""
    if not separable:
        return nn.Conv2d(cin, cout, 3, padding=1)
    return nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False), nn.Conv2d(cin, cout, 1))


class FPN(nn.Module):
    def __init__(self, in_channels: list[int], channels: int, num_downsample: int, separable: bool = False):
        super().__init__()
        self.lat_layers = nn.ModuleList([nn.Conv2d(c, channels, 1) for c in reversed(in_channels)])
        self.pred_layers = nn.ModuleList([conv3x3(channels, channels, separable) for _ in in_channels])
        self.downsample_layers = nn.ModuleList([nn.Conv2d(channels, channels, 3, padding=1, stride=2)
                                                for _ in range(num_downsample)])

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """``feats`` shallowest first -> P3..P7. The conv lists are stored deepest first, as the official ones."""
        laterals = [lat(f) for lat, f in zip(self.lat_layers, reversed(feats))]
        merged = [laterals[0]]
        for lateral in laterals[1:]:
            up = F.interpolate(merged[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False)
            merged.append(up + lateral)
        outs = [F.relu(pred(m)) for pred, m in zip(self.pred_layers, merged)][::-1]
        for down in self.downsample_layers:
            outs.append(down(outs[-1]))
        return outs


def make_protonet(cin: int, channels: int, mask_dim: int, separable: bool = False) -> nn.Sequential:
    """Index-compatible with the official ``make_net(mask_proto_net, include_last_relu=False)``."""
    return nn.Sequential(
        conv3x3(cin, channels, separable), nn.ReLU(inplace=True),
        conv3x3(channels, channels, separable), nn.ReLU(inplace=True),
        conv3x3(channels, channels, separable), nn.ReLU(inplace=True),
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.ReLU(inplace=True),
        conv3x3(channels, channels, separable), nn.ReLU(inplace=True),
        nn.Conv2d(channels, mask_dim, 1),
    )


class PredictionHead(nn.Module):
    def __init__(self, cin: int, channels: int, anchors: int, num_scores: int, mask_dim: int,
                 separable: bool = False):
        super().__init__()
        self.anchors, self.num_scores, self.mask_dim = anchors, num_scores, mask_dim
        self.upfeature = nn.Sequential(conv3x3(cin, channels, separable), nn.ReLU(inplace=True))
        self.bbox_layer = conv3x3(channels, anchors * 4, separable)
        self.conf_layer = conv3x3(channels, anchors * num_scores, separable)
        self.mask_layer = conv3x3(channels, anchors * mask_dim, separable)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.upfeature(x)
        n = x.shape[0]

        def flat(t: torch.Tensor, last: int) -> torch.Tensor:
            return t.permute(0, 2, 3, 1).reshape(n, -1, last)

        return flat(self.bbox_layer(x), 4), flat(self.conf_layer(x), self.num_scores), flat(self.mask_layer(x), self.mask_dim)


@dataclass
class YolactTrainOutput:
    """Training-mode outputs. ``conf_logits`` are raw (the loss applies its own softmax); ``mask`` is
    already tanh'd, as in the official training; ``segm`` are the semantic aux logits at P3 size."""

    loc: torch.Tensor  # (N, P, 4)
    conf_logits: torch.Tensor  # (N, P, C+1), background first
    mask: torch.Tensor  # (N, P, K)
    proto: torch.Tensor  # (N, Hp, Wp, K), after ReLU
    segm: torch.Tensor  # (N, C, h3, w3)
    priors: torch.Tensor = field(repr=False)  # (P, 4)
    prior_levels: torch.Tensor | None = field(default=None, repr=False)  # (P,) FPN level of each prior
    prior_cells: torch.Tensor | None = field(default=None, repr=False)  # (P, 2) its level's cell w, h in [0, 1]


class Yolact(nn.Module):
    def __init__(self, cfg: YolactConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = build_backbone(cfg.backbone, cfg.backbone_width)
        in_channels = [self.backbone.channels[i] for i in cfg.selected_layers]
        self.proto_net = make_protonet(cfg.fpn_channels, cfg.proto_channels, cfg.mask_dim, cfg.separable)
        self.fpn = FPN(in_channels, cfg.fpn_channels, cfg.num_downsample, cfg.separable)
        self.prediction_layers = nn.ModuleList([PredictionHead(cfg.fpn_channels, cfg.head_channels, cfg.anchors_per_cell,
                                                               cfg.num_classes + 1, cfg.mask_dim, cfg.separable)])
        self.semantic_seg_conv = nn.Conv2d(cfg.fpn_channels, cfg.num_classes, 1)
        self.feature_sizes = feature_sizes(cfg, self.backbone.strides)
        # Not persistent: official checkpoints carry no priors; they follow from the config.
        self.register_buffer("priors", make_priors(cfg, self.feature_sizes), persistent=False)
        # For assignment rules that look at each level separately (ATSS in pipeline.nets.yolact_loss).
        per_level = [fh * fw * cfg.anchors_per_cell for fh, fw in self.feature_sizes]
        self.register_buffer("prior_levels", torch.cat([torch.full((n,), level) for level, n in enumerate(per_level)]),
                             persistent=False)
        cells = torch.tensor([[1.0 / fw, 1.0 / fh] for fh, fw in self.feature_sizes])
        self.register_buffer("prior_cells", cells[self.prior_levels], persistent=False)

    def inference_parameters(self) -> int:
        """Learnable parameters the exported graph uses: not the training-only semantic head, nor backbone
        stages after the deepest selected one (present in the checkpoints, never computed)."""
        last = max(self.cfg.selected_layers)
        unused = [*self.backbone.layers[last + 1:], self.semantic_seg_conv]
        skip = {id(p) for m in unused for p in m.parameters()}
        return sum(p.numel() for p in self.parameters() if id(p) not in skip)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...] | YolactTrainOutput:
        feats = self.backbone(x, max(self.cfg.selected_layers))
        pyramid = self.fpn([feats[i] for i in self.cfg.selected_layers])
        proto = F.relu(self.proto_net(pyramid[0])).permute(0, 2, 3, 1)
        head = self.prediction_layers[0]
        loc, conf, mask = (torch.cat(t, dim=1) for t in zip(*(head(p) for p in pyramid)))
        mask = torch.tanh(mask)
        if self.training:
            return YolactTrainOutput(loc=loc, conf_logits=conf, mask=mask, proto=proto,
                                     segm=self.semantic_seg_conv(pyramid[0]), priors=self.priors,
                                     prior_levels=self.prior_levels, prior_cells=self.prior_cells)
        return loc, F.softmax(conf, dim=-1), mask, proto

