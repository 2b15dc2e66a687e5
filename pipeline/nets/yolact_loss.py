"""YOLACT's training losses: prior matching, box encoding, box / class (OHEM) / mask / semantic losses.

Written from the paper and the facts of the official dbolya/yolact code (layers/box_utils.py,
layers/modules/multibox_loss.py, data/config.py for yolact_base), which is what trained every official
checkpoint:

- matching: IoU of each ground-truth box with each prior (centre-size priors as corner boxes); a prior
  whose best IoU is >= 0.5 is positive for that box, < 0.4 background, in between neutral (no class
  loss). Each ground-truth box first claims its best prior (highest overlaps first), so none goes
  unmatched however badly it fits the anchors.
- boxes: SSD encoding with variances 0.1 (centre, in prior widths) and 0.2 (log size); smooth L1, weight 1.5.
- classes: softmax cross-entropy over positives plus the 3x as many hardest negatives (OHEM, ranked by
  -log p(background)), weight 1.
- masks: sigmoid(prototypes @ coefficients) against the ground-truth mask bilinearly downsampled to the
  prototype size and binarised at 0.5; BCE summed inside the ground-truth box (one prototype pixel of
  padding, as the official crop), divided by the box's area in prototype pixels (at least one pixel, so a
  box thinner than a prototype pixel cannot blow the loss up), weight 6.125; at most
  ``masks_to_train`` (100) positives per image, chosen at random, the sum rescaled to all positives.
- semantic aux: per-class sigmoid BCE of the P3 semantic logits against the union of that class's masks
  downsampled (bilinear, > 0.5) to the logits' size, summed over pixels and divided by their number.

Box, class and mask losses are divided by the batch's number of positives, the semantic loss by the batch
size, as the official does.

Two options for our own small road model, off by default (the official recipe):

- ``assign="atss"``: IoU matching gives a thin, distant pedestrian (4x22 px at 384x384, on a stride-8
  grid) only its forced prior, so the head sees one positive per such object and rarely fires on them.
  ATSS (Zhang et al., CVPR 2020) adds positives per box: on each level the ``atss_topk``
  priors whose centres lie closest to the box centre are candidates; those whose IoU reaches the mean + std
  of the candidates' IoUs, and whose centre lies in the box (grown to at least one cell of that level),
  are positive. A prior claimed by several boxes goes to the one it overlaps most. Everything the IoU rule
  makes positive stays positive.
- ``soft_masks=True``: the mask target is each prototype pixel's covered fraction (area downsampling)
  instead of bilinear-then-binarise, which erases objects narrower than about half a prototype pixel.

Don't-care regions (``GroundTruth.ignore``, objects the instance rules leave out; see
pipeline/train/instance_data.py): a background prior whose centre lies inside one (the box grown to at
least one cell of the prior's level, so a box thinner than a cell still covers the nearest centres) turns
neutral: no class loss, never a hard negative. The official code does the same for COCO's crowd boxes by
IoU, which a box a few pixels wide never reaches. Positives are untouched, and the semantic loss still
sees those pixels as background.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch.nn import functional as F

from pipeline.nets.yolact import YolactTrainOutput

VARIANCES = (0.1, 0.2)


@dataclass(frozen=True)
class YolactLossConfig:
    """Official yolact_base values unless a training config overrides them."""

    pos_iou: float = 0.5
    neg_iou: float = 0.4
    negpos_ratio: int = 3
    box_alpha: float = 1.5
    conf_alpha: float = 1.0
    mask_alpha: float = 6.125
    semantic_alpha: float = 1.0
    masks_to_train: int = 100
    assign: Literal["iou", "atss"] = "iou"
    atss_topk: int = 9  # candidate priors per level (ATSS's k)
    soft_masks: bool = False


@dataclass(frozen=True)
class GroundTruth:
    """One image's instances at the model's input size."""

    boxes: torch.Tensor  # (n, 4) float x1, y1, x2, y2 normalised to [0, 1]
    classes: torch.Tensor  # (n,) long, 0..C-1 (no background)
    masks: torch.Tensor  # (n, S, S) float 0/1 at the input size
    ignore: torch.Tensor | None = None  # (m, 4) don't-care boxes, normalised like ``boxes``


def point_form(priors: torch.Tensor) -> torch.Tensor:
    """cx, cy, w, h -> x1, y1, x2, y2."""
    return torch.cat([priors[:, :2] - priors[:, 2:] / 2, priors[:, :2] + priors[:, 2:] / 2], dim=1)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, 4) x (m, 4) corner boxes -> (n, m) IoU."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(dim=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(dim=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def encode(boxes: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Corner boxes matched to centre-size priors -> the offsets the network regresses (inverse of decode)."""
    centre = ((boxes[:, :2] + boxes[:, 2:]) / 2 - priors[:, :2]) / (VARIANCES[0] * priors[:, 2:])
    size = torch.log((boxes[:, 2:] - boxes[:, :2]) / priors[:, 2:]) / VARIANCES[1]
    return torch.cat([centre, size], dim=1)


def decode(loc: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Regressed offsets + centre-size priors -> corner boxes (normalised)."""
    centre = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])
    return torch.cat([centre - size / 2, centre + size / 2], dim=1)


def match(boxes: torch.Tensor, priors: torch.Tensor, pos_iou: float, neg_iou: float,
          overlaps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Assign priors to ground-truth boxes. Returns ``idx`` (P,) the box each prior is matched to, and
    ``state`` (P,) 1 positive, 0 background, -1 neutral. With no boxes every prior is background.
    ``overlaps``: the (n, P) box-prior IoUs when the caller has them already (they are not modified)."""
    num_priors = priors.shape[0]
    if boxes.shape[0] == 0:
        zeros = torch.zeros(num_priors, dtype=torch.long, device=priors.device)
        return zeros, zeros.clone()
    overlaps = box_iou(boxes, point_form(priors)) if overlaps is None else overlaps.clone()  # (n, P)
    best_overlap, idx = overlaps.max(dim=0)
    # Each box claims its best prior, boxes with the highest overlap first; a claimed prior is taken
    # out for the others, so two boxes whose best prior coincides both still get one.
    for _ in range(boxes.shape[0]):
        per_box, per_box_prior = overlaps.max(dim=1)
        j = per_box.argmax()
        i = per_box_prior[j]
        overlaps[:, i] = -1
        overlaps[j, :] = -1
        best_overlap[i] = 2.0
        idx[i] = j
    state = torch.ones(num_priors, dtype=torch.long, device=priors.device)
    state[best_overlap < pos_iou] = -1
    state[best_overlap < neg_iou] = 0
    return idx, state


def match_atss(boxes: torch.Tensor, priors: torch.Tensor, levels: torch.Tensor, cells: torch.Tensor, topk: int,
               pos_iou: float, neg_iou: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``match`` plus ATSS positives (see the module docstring). ``levels`` (P,) is each prior's FPN level
    and ``cells`` (P, 2) its level's cell size, both as ``Yolact`` builds them."""
    if boxes.shape[0] == 0:
        return match(boxes, priors, pos_iou, neg_iou)
    overlaps = box_iou(boxes, point_form(priors))  # (n, P)
    idx, state = match(boxes, priors, pos_iou, neg_iou, overlaps)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    dist = torch.cdist(centres, priors[:, :2])  # (n, P)
    candidates = []
    for level in levels.unique():
        where = torch.nonzero(levels == level).squeeze(1)
        k = min(topk, where.numel())
        candidates.append(where[dist[:, where].topk(k, dim=1, largest=False).indices])
    cand = torch.cat(candidates, dim=1)  # (n, L*k) prior indices
    cand_iou = overlaps.gather(1, cand)
    threshold = cand_iou.mean(dim=1, keepdim=True) + cand_iou.std(dim=1, keepdim=True)
    half = torch.maximum((boxes[:, None, 2:] - boxes[:, None, :2]) / 2, cells[cand] / 2)  # (n, L*k, 2)
    inside = ((priors[cand, :2] - centres[:, None]).abs() <= half).all(dim=2)
    chosen = (cand_iou >= threshold) & inside & (cand_iou > 0)
    claim = torch.full_like(overlaps, -1.0)
    claim.scatter_(1, cand, torch.where(chosen, cand_iou, torch.full_like(cand_iou, -1.0)))
    best, owner = claim.max(dim=0)
    extra = (best > 0) & (state != 1)  # never re-assign an IoU-rule positive (or a forced prior)
    idx = torch.where(extra, owner, idx)
    state = torch.where(extra, torch.ones_like(state), state)
    return idx, state


def inside_boxes(boxes: torch.Tensor, priors: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """(P,) bool: priors whose centre lies inside any of ``boxes`` (m, 4), each grown to at least one cell
    (``cells``, (P, 2): the prior's level's cell size) around its centre."""
    if boxes.shape[0] == 0:
        return torch.zeros(priors.shape[0], dtype=torch.bool, device=priors.device)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = torch.maximum((boxes[:, None, 2:] - boxes[:, None, :2]) / 2, cells[None] / 2)  # (m, P, 2)
    return ((priors[None, :, :2] - centres[:, None]).abs() <= half).all(dim=2).any(dim=0)


def hard_negatives(conf_logits: torch.Tensor, conf_t: torch.Tensor, ratio: int) -> torch.Tensor:
    """(N, P) bool: per image, the ``ratio`` x (number of positives) background priors the net finds least
    background-like (largest -log softmax(background)). Positives (conf_t > 0) and neutrals (conf_t < 0)
    are never chosen."""
    with torch.no_grad():
        loss = torch.logsumexp(conf_logits, dim=-1) - conf_logits[..., 0]
        loss = loss.masked_fill(conf_t != 0, -1.0)  # below every real loss (>= 0)
        rank = loss.argsort(dim=1, descending=True).argsort(dim=1)
        num_pos = (conf_t > 0).sum(dim=1, keepdim=True)
        num_neg = (ratio * num_pos).clamp(max=conf_t.shape[1] - 1)
        return (rank < num_neg) & (conf_t == 0)


def downsample_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(n, S, S) 0/1 -> (n, h, w) 0/1: bilinear to ``size`` then > 0.5, as the official loss prepares them."""
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *size))
    return (F.interpolate(masks[None].float(), size=size, mode="bilinear", align_corners=False)[0] > 0.5).float()


def box_crop(boxes: torch.Tensor, height: int, width: int, padding: int = 1) -> torch.Tensor:
    """(n, 4) normalised boxes -> (n, height, width) float 0/1: inside each box grown by ``padding`` pixels."""
    x1 = (torch.minimum(boxes[:, 0], boxes[:, 2]) * width - padding).clamp(min=0)
    x2 = (torch.maximum(boxes[:, 0], boxes[:, 2]) * width + padding).clamp(max=width)
    y1 = (torch.minimum(boxes[:, 1], boxes[:, 3]) * height - padding).clamp(min=0)
    y2 = (torch.maximum(boxes[:, 1], boxes[:, 3]) * height + padding).clamp(max=height)
    cols = torch.arange(width, device=boxes.device, dtype=boxes.dtype)
    rows = torch.arange(height, device=boxes.device, dtype=boxes.dtype)
    in_x = (cols[None] >= x1[:, None]) & (cols[None] < x2[:, None])
    in_y = (rows[None] >= y1[:, None]) & (rows[None] < y2[:, None])
    return (in_y[:, :, None] & in_x[:, None, :]).to(boxes.dtype)


class YolactLoss:
    """``loss(output, targets) -> {"box", "class", "mask", "semantic", "total"}`` (scalar tensors)."""

    def __init__(self, cfg: YolactLossConfig = YolactLossConfig()):
        self.cfg = cfg

    def __call__(self, out: YolactTrainOutput, targets: list[GroundTruth]) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        priors = out.priors
        n = out.loc.shape[0]
        if cfg.assign == "atss":
            if out.prior_levels is None or out.prior_cells is None:
                raise ValueError("ATSS assignment needs the net's prior_levels and prior_cells")
            matches = [match_atss(t.boxes, priors, out.prior_levels, out.prior_cells, cfg.atss_topk, cfg.pos_iou,
                                  cfg.neg_iou) for t in targets]
        else:
            matches = [match(t.boxes, priors, cfg.pos_iou, cfg.neg_iou) for t in targets]
        conf_t = torch.stack([torch.where(state > 0, t.classes[idx] + 1 if len(t.classes) else state, state)
                              for t, (idx, state) in zip(targets, matches)])  # (N, P): class+1, 0 bg, -1 neutral
        if any(t.ignore is not None and len(t.ignore) for t in targets):
            if out.prior_cells is None:
                raise ValueError("don't-care regions need the net's prior_cells")
            dont_care = torch.stack([inside_boxes(t.ignore, priors, out.prior_cells) if t.ignore is not None
                                     else torch.zeros_like(conf_t[0], dtype=torch.bool) for t in targets])
            conf_t = conf_t.masked_fill(dont_care & (conf_t == 0), -1)
        pos = conf_t > 0
        num_pos = pos.sum().clamp(min=1).float()

        loc_t = torch.stack([encode(t.boxes[idx], priors) if len(t.boxes) else torch.zeros_like(priors)
                             for t, (idx, _) in zip(targets, matches)])
        box = F.smooth_l1_loss(out.loc[pos], loc_t[pos], reduction="sum") * cfg.box_alpha

        neg = hard_negatives(out.conf_logits, conf_t, cfg.negpos_ratio)
        chosen = pos | neg
        conf = F.cross_entropy(out.conf_logits[chosen], conf_t[chosen], reduction="sum") * cfg.conf_alpha

        mask = sum((self._mask_loss(out.proto[b], out.mask[b], targets[b], matches[b][0], pos[b]) for b in range(n)),
                   out.proto.new_zeros(()))
        semantic = sum((self._semantic_loss(out.segm[b], targets[b]) for b in range(n)), out.segm.new_zeros(()))

        losses = {"box": box / num_pos, "class": conf / num_pos, "mask": mask * cfg.mask_alpha / num_pos,
                  "semantic": semantic * cfg.semantic_alpha / n}
        losses["total"] = sum(losses.values())
        return losses

    def _mask_loss(self, proto: torch.Tensor, coeffs: torch.Tensor, target: GroundTruth, idx: torch.Tensor,
                   pos: torch.Tensor) -> torch.Tensor:
        """Sum over this image's positives of the box-area-normalised BCE (see the module docstring)."""
        pos_idx = idx[pos]
        total = pos_idx.shape[0]
        if total == 0:
            return proto.new_zeros(())
        coeffs = coeffs[pos]
        if total > self.cfg.masks_to_train:
            keep = torch.randperm(total, device=proto.device)[: self.cfg.masks_to_train]
            coeffs, pos_idx = coeffs[keep], pos_idx[keep]
        hp, wp = proto.shape[:2]
        if self.cfg.soft_masks:
            gt = F.interpolate(target.masks[None].float(), size=(hp, wp), mode="area")[0][pos_idx]
        else:
            gt = downsample_masks(target.masks, (hp, wp))[pos_idx]
        boxes = target.boxes[pos_idx]
        logits = torch.einsum("hwk,nk->nhw", proto, coeffs)
        bce = F.binary_cross_entropy_with_logits(logits, gt, reduction="none") * box_crop(boxes, hp, wp)
        area = ((boxes[:, 2] - boxes[:, 0]) * wp * (boxes[:, 3] - boxes[:, 1]) * hp).clamp(min=1.0)
        return (bce.sum(dim=(1, 2)) / area).sum() * (total / pos_idx.shape[0])

    def _semantic_loss(self, segm: torch.Tensor, target: GroundTruth) -> torch.Tensor:
        num_classes, h, w = segm.shape
        masks = downsample_masks(target.masks, (h, w)).reshape(-1, h * w)
        one_hot = F.one_hot(target.classes, num_classes).to(masks.dtype)  # (n, C)
        truth = (one_hot.t() @ masks > 0).to(segm.dtype).reshape(num_classes, h, w)
        return F.binary_cross_entropy_with_logits(segm, truth, reduction="sum") / (h * w)
