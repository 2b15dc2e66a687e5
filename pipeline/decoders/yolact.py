"""YOLACT outputs -> :class:`pipeline.types.Instances` at the frame's size, in numpy (no torch).

The ONNX graph stops at the heads (``loc``, ``conf`` softmax, ``mask`` tanh coefficients, ``proto``,
constant ``priors``; see the issue-4 design notes); everything after that follows the official
``Detect`` + ``postprocess`` (dbolya/yolact) so that imported checkpoints give the official detections:

1. candidates: priors whose best non-background score beats ``conf_threshold`` (official 0.05);
2. boxes decoded from the priors with variances 0.1 / 0.2 (SSD encoding);
3. NMS per class: Fast NMS (the official default: per-class top ``per_class_top`` by score, IoU matrix,
   upper triangle, column max, keep where it is <= ``nms_iou`` -- a box is dropped by any higher-scoring
   box, even one that was itself dropped) or traditional greedy NMS; then the global ``top_k`` by score;
4. ``score_threshold``; masks only for the survivors: ``sigmoid(proto @ coeffs)`` at prototype
   resolution, zeroed outside the box padded by one prototype pixel, bilinearly upsampled to the frame
   (half-pixel centres, as torch's ``interpolate(align_corners=False)``), ``> mask_threshold``.
   ``mask_crop="box"`` (not official; a model card may choose it) also clears the frame pixels whose
   centres lie outside the box itself: at prototype resolution the padded crop reaches up to a prototype
   pixel (4-8 frame pixels) past the box, as wide as a distant pedestrian.
5. ``maskness_power`` p > 0 (not official; a model card may choose it): each score times its mask's
   maskness ** p, the mean probability over the prototype-resolution mask pixels above ``mask_threshold``
   (SOLOv2's rescoring: a confident class score with a vague mask is often a false or duplicate
   detection); detections are re-sorted and those now under ``score_threshold`` dropped before upsampling.
   The rescoring only lowers scores, so steps 1-4 (which select on the class score) lose nothing it keeps,
   except that ``top_k`` is taken before it.

Two shortcuts keep this cheap without changing the result:

- ``score_threshold`` is applied before NMS instead of after. Exact: whether a box survives either NMS
  depends only on boxes of its class with higher scores, which pass the threshold whenever it does, and a
  per-class top-k of the passing boxes is a prefix of the top-k of all.
- The upsampling is computed only for the frame pixels whose two bilinear taps can touch the cropped
  region, as ``A_y[rows] @ crop @ A_x[cols].T`` with the dense interpolation matrices of the frame size;
  every other pixel interpolates zeros, so the masks equal a full-frame upsampling of the cropped
  prototype masks up to float rounding.

Boxes are float pixels of the frame (the input was stretched, so x scales by the frame width and y by its
height), clamped to the frame. The official code then truncates them to integers; we keep the fraction.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from pipeline.errors import EdgeSegError
from pipeline.modelcard import MASK_CROPS, YOLACT_OUTPUTS, MaskCrop, ModelCard
from pipeline.types import Instances

Nms = Literal["fast", "traditional"]
VARIANCES = (0.1, 0.2)  # centre, size: the official SSD encoding
CONF_THRESHOLD = 0.05  # official nms_conf_thresh: which priors are candidates at all
SOFTMAX_SLACK = 1e-4  # float32 softmax rows sum to 1 only up to rounding
CROP_PADDING = 1  # prototype pixels added around the box before cropping, as the official crop()


def decode_boxes(loc: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """(M, 4) offsets + (M, 4) priors (cx, cy, w, h, normalised) -> (M, 4) x1 y1 x2 y2, normalised."""
    centre = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * np.exp(loc[:, 2:] * VARIANCES[1])
    corner = centre - size / 2
    return np.concatenate([corner, corner + size], axis=1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (..., A, 4) and (..., B, 4) x1y1x2y2 boxes -> (..., A, B); areas without the +1 pixel
    (the official ``jaccard``). Works on one coordinate plane at a time: about 3x faster than slicing
    pairs of coordinates off a (..., A, B, 2) broadcast."""
    ax1, ay1, ax2, ay2 = (a[..., :, i, None] for i in range(4))
    bx1, by1, bx2, by2 = (b[..., None, :, i] for i in range(4))
    w = np.maximum(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0)
    h = np.maximum(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0)
    inter = w * h
    return inter / ((ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter)


def _global_top(rows: np.ndarray, classes: np.ndarray, scores: np.ndarray,
                top_k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(-scores, kind="stable")[:top_k]
    return rows[order], classes[order].astype(np.int32), scores[order]


def fast_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, per_class_top: int, top_k: int,
             min_score: float = -np.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Official Fast NMS. ``boxes`` (M, 4), ``scores`` (M, C) (no background column); only entries with
    score > ``min_score`` take part. Returns (row into ``boxes``, class, score), best score first, at most
    ``top_k``. All classes at once: their top-k lists padded to one length, one batched IoU matrix."""
    eligible = scores > min_score
    counts = eligible.sum(0)
    present = np.flatnonzero(counts)
    if not present.size:
        return np.zeros(0, np.intp), np.zeros(0, np.int32), np.zeros(0, scores.dtype)
    masked = np.where(eligible[:, present], scores[:, present], -np.inf).T  # (C', M)
    k = min(per_class_top, int(counts.max()))
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]  # (C', k): each class's best first
    top = np.take_along_axis(masked, order, axis=1)
    ranked = boxes[order]  # (C', k, 4)
    iou = np.triu(box_iou(ranked, ranked), 1)  # [c, i, j]: i ranked above j
    # Padding (score -inf) sorts last, so it never sits above a real entry: masking it out is enough.
    keep = (iou.max(1) <= iou_threshold) & (top > -np.inf)
    return _global_top(order[keep], present[np.nonzero(keep)[0]], top[keep], top_k)


def greedy_nms(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Classic NMS over ``boxes`` sorted best first, in the official Cython ``nms``'s pixel convention
    (areas ``(x2 - x1 + 1) * (y2 - y1 + 1)``, dropped when IoU >= threshold). Returns kept positions."""
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    alive = np.arange(len(boxes))
    kept = []
    while alive.size:
        i, rest = alive[0], alive[1:]
        kept.append(i)
        lo = np.maximum(boxes[i, :2], boxes[rest, :2])
        hi = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        wh = np.clip(hi - lo + 1, 0, None)
        inter = wh[:, 0] * wh[:, 1]
        alive = rest[inter / (area[i] + area[rest] - inter) < iou_threshold]
    return np.asarray(kept, np.intp)


def traditional_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, top_k: int,
                    pixel_scale: float | np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Official traditional NMS: greedy per class over entries with score > ``min_score`` (no per-class
    cap), boxes measured in pixels of the input (``pixel_scale``: its side, or its (w, h, w, h)), then the
    global ``top_k``."""
    rows, classes, kept_scores = [], [], []
    for c in np.flatnonzero((scores > min_score).any(0)):
        idx = np.flatnonzero(scores[:, c] > min_score)
        idx = idx[np.argsort(-scores[idx, c], kind="stable")]
        keep = idx[greedy_nms(boxes[idx] * pixel_scale, iou_threshold)]
        rows.append(keep)
        classes.append(np.full(len(keep), c))
        kept_scores.append(scores[keep, c])
    if not rows:
        return np.zeros(0, np.intp), np.zeros(0, np.int32), np.zeros(0, scores.dtype)
    return _global_top(np.concatenate(rows), np.concatenate(classes), np.concatenate(kept_scores), top_k)


def crop_bounds(lo: np.ndarray, hi: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised box edges -> [start, stop) prototype pixels kept by the official ``crop``: pixel p is
    kept when ``min * size - 1 <= p < max * size + 1`` (edges clamped to the map)."""
    first = np.maximum(np.minimum(lo, hi) * np.float32(size) - CROP_PADDING, 0)
    last = np.minimum(np.maximum(lo, hi) * np.float32(size) + CROP_PADDING, size)
    start = np.clip(np.ceil(first), 0, size).astype(np.intp)
    stop = np.clip(np.ceil(last), 0, size).astype(np.intp)
    return start, np.maximum(stop, start)


@lru_cache(maxsize=16)
def bilinear_weights(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear resampling of a length-``n_in`` axis to ``n_out`` with half-pixel centres (torch's
    ``align_corners=False``, cv2's INTER_LINEAR): the dense (n_out, n_in) weight matrix and each output
    pixel's lower and upper tap. Built once per frame size, not per frame."""
    src = np.maximum((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * np.float32(n_in / n_out)
                     - np.float32(0.5), 0)
    low = src.astype(np.intp)
    frac = src - low
    high = np.minimum(low + 1, n_in - 1)
    weights = np.zeros((n_out, n_in), np.float32)
    out = np.arange(n_out)
    np.add.at(weights, (out, low), 1 - frac)
    np.add.at(weights, (out, high), frac)
    for a in (weights, low, high):
        a.flags.writeable = False
    return weights, low, high


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function via tanh: no overflow warnings for large negative inputs."""
    return np.float32(0.5) * np.tanh(np.float32(0.5) * x) + np.float32(0.5)


def crop_bounds_all(boxes: np.ndarray, proto_shape: tuple[int, ...]) -> np.ndarray:
    """(N, 4) normalised boxes -> (N, 4) int [row start, row stop, col start, col stop] of each crop."""
    r0, r1 = crop_bounds(boxes[:, 1], boxes[:, 3], proto_shape[0])
    c0, c1 = crop_bounds(boxes[:, 0], boxes[:, 2], proto_shape[1])
    return np.stack([r0, r1, c0, c1], axis=1)


def prototype_masks(proto: np.ndarray, coeffs: np.ndarray, crops: np.ndarray) -> list[np.ndarray]:
    """``sigmoid(proto @ coeffs)`` inside each crop only, at prototype resolution (outside it the
    official crop zeroes the mask anyway). Empty crops give empty arrays."""
    return [sigmoid(proto[r0:r1, c0:c1] @ c) for (r0, r1, c0, c1), c in zip(crops, coeffs)]


def maskness(inside: Sequence[np.ndarray], threshold: float) -> np.ndarray:
    """Each prototype-resolution mask's mean probability over its pixels above ``threshold`` (0 where none
    is): how sure the net is of the mask it drew, whatever the mask's size."""
    out = np.zeros(len(inside), np.float32)
    for i, probabilities in enumerate(inside):
        above = probabilities[probabilities > threshold]
        if above.size:
            out[i] = above.mean()
    return out


def upsample_masks(inside: Sequence[np.ndarray], crops: np.ndarray, proto_shape: tuple[int, ...],
                   size: tuple[int, int], threshold: float, boxes: np.ndarray | None = None) -> np.ndarray:
    """Cropped prototype-resolution masks -> (N, H, W) bool at frame ``size`` (w, h), interpolating only
    the frame pixels whose bilinear taps reach the crop (see the module docstring). ``boxes``: (N, 4) frame
    pixels x1, y1, x2, y2; when given, pixels whose centres fall outside them stay False as well."""
    width, height = size
    ay, y_low, y_high = bilinear_weights(height, proto_shape[0])
    ax, x_low, x_high = bilinear_weights(width, proto_shape[1])
    r0, r1, c0, c1 = crops.T
    # Taps are sorted, so the frame rows/cols with upper tap >= start and lower tap < stop are a range.
    fy0, fy1 = np.searchsorted(y_high, r0), np.searchsorted(y_low, r1)
    fx0, fx1 = np.searchsorted(x_high, c0), np.searchsorted(x_low, c1)
    if boxes is not None:  # pixel p's centre p + 0.5 lies in [lo, hi]  <=>  ceil(lo - 0.5) <= p <= floor(hi - 0.5)
        first = np.ceil(boxes[:, :2] - 0.5).astype(np.intp)
        stop = np.floor(boxes[:, 2:] - 0.5).astype(np.intp) + 1
        fx0, fy0 = np.maximum(fx0, first[:, 0]), np.maximum(fy0, first[:, 1])
        fx1, fy1 = np.minimum(fx1, stop[:, 0]), np.minimum(fy1, stop[:, 1])
    masks = np.zeros((len(inside), height, width), bool)
    for i in np.flatnonzero((r1 > r0) & (c1 > c0) & (fy1 > fy0) & (fx1 > fx0)):
        up = ay[fy0[i]:fy1[i], r0[i]:r1[i]] @ inside[i] @ ax[fx0[i]:fx1[i], c0[i]:c1[i]].T
        np.greater(up, threshold, out=masks[i, fy0[i]:fy1[i], fx0[i]:fx1[i]])
    return masks


def frame_boxes(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Normalised x1y1x2y2 -> float32 frame pixels, ordered and clamped to the frame."""
    scale = np.array(size * 2, np.float32)
    pixels = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], 1)
    return np.clip(pixels * scale, 0, scale).astype(np.float32)


class YolactDecoder:
    """``decoder(outputs, frame_sizes) -> [Instances]``, one per image of the batch."""

    def __init__(self, *, classes: Sequence[str], score_threshold: float = 0.3, nms: Nms = "fast",
                 nms_iou: float = 0.5, top_k: int = 100, per_class_top: int = 200, mask_threshold: float = 0.5,
                 mask_crop: MaskCrop = "prototype", maskness_power: float = 0.0,
                 conf_threshold: float = CONF_THRESHOLD,
                 input_size: int | tuple[int, int] = 550,
                 name: str = "yolact"):
        """``conf_threshold`` only matters when ``score_threshold`` is below it (evaluation at 0):
        ``score_threshold`` <= 0 keeps every NMS survivor, as the official ``postprocess``.
        ``input_size``: the network's input side, or (width, height); traditional NMS measures its +1-pixel
        box areas in those pixels, as the official code does with ``cfg.max_size``. ``name`` labels error messages."""
        if nms not in ("fast", "traditional"):
            raise ValueError(f"nms must be 'fast' or 'traditional', not {nms!r}")
        if mask_crop not in MASK_CROPS:
            raise ValueError(f"mask_crop must be one of {MASK_CROPS}, not {mask_crop!r}")
        if top_k < 1 or per_class_top < 1:
            raise ValueError("top_k and per_class_top must be positive")
        if maskness_power < 0:
            raise ValueError(f"maskness_power must be >= 0, not {maskness_power}")
        self.class_names = tuple(classes)
        self.score_threshold = score_threshold
        self.nms = nms
        self.nms_iou = nms_iou
        self.top_k = top_k
        self.per_class_top = per_class_top
        self.mask_threshold = mask_threshold
        self.mask_crop = mask_crop
        self.maskness_power = maskness_power
        self.conf_threshold = conf_threshold
        w, h = (input_size, input_size) if isinstance(input_size, int) else input_size
        self.pixel_scale = np.array([w, h, w, h], np.float32)
        self.name = name

    @classmethod
    def from_card(cls, card: ModelCard, **overrides: Any) -> YolactDecoder:
        """A decoder configured by an instance model card (``classes`` and its ``postprocess`` section, or
        that section's defaults when the card has none); keyword ``overrides`` win over the card."""
        if card.task != "instance" or card.output.kind != "yolact":
            raise ValueError(f"model {card.name} is a {card.task} model with {card.output.kind!r} output, not YOLACT")
        post = card.detection
        params = dict(classes=card.classes, score_threshold=post.score_threshold, nms=post.nms,
                      nms_iou=post.nms_iou, top_k=post.top_k, per_class_top=post.per_class_top,
                      mask_threshold=post.mask_threshold, mask_crop=post.mask_crop,
                      maskness_power=post.maskness_power, input_size=(card.input.width, card.input.height),
                      name=card.name)
        return cls(**(params | overrides))

    def __call__(self, outputs: dict[str, np.ndarray], frame_sizes: Sequence[tuple[int, int]]) -> list[Instances]:
        missing = [n for n in YOLACT_OUTPUTS if n not in outputs]
        if missing:
            raise EdgeSegError(f"model {self.name}: YOLACT output(s) {', '.join(missing)} missing "
                               f"(needs {', '.join(YOLACT_OUTPUTS)})")
        loc, conf, coeffs, proto = (outputs[n] for n in ("loc", "conf", "mask", "proto"))
        priors = np.asarray(outputs["priors"], np.float32).reshape(-1, 4)
        if conf.shape[-1] != len(self.class_names) + 1:
            raise EdgeSegError(f"model {self.name}: output 'conf' has {conf.shape[-1]} scores per prior, the card "
                               f"names {len(self.class_names)} classes (+1 background expected)")
        if len(conf) != len(frame_sizes):
            raise ValueError(f"{len(conf)} outputs for {len(frame_sizes)} frames")
        return [self.decode(loc[b], conf[b], coeffs[b], proto[b], priors, size) for b, size in enumerate(frame_sizes)]

    def nms_survivors(self, loc: np.ndarray, conf: np.ndarray,
                      priors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One image's (P, 4) offsets and (P, C+1) scores -> (prior index, class, score, normalised box)
        of the detections above ``score_threshold``, best first."""
        # Priors that can yield a detection: best score beats conf_threshold and, where it is higher,
        # score_threshold (see the module docstring for why filtering early is exact). ``conf`` is a softmax,
        # so the best foreground score is at most 1 - background: one look at the background column rules
        # out almost every prior before the max over all classes (1 ms for 19,248 priors x 80 classes).
        floor = max(self.conf_threshold, self.score_threshold)
        plausible = np.flatnonzero(conf[:, 0] < 1 - floor + SOFTMAX_SLACK)
        candidates = plausible[conf[plausible, 1:].max(1) > floor]
        scores = conf[candidates, 1:]
        boxes = decode_boxes(loc[candidates].astype(np.float32), priors[candidates])
        if self.nms == "fast":
            min_score = self.score_threshold if self.score_threshold > 0 else -np.inf
            rows, classes, kept = fast_nms(boxes, scores, self.nms_iou, self.per_class_top, self.top_k, min_score)
        else:
            rows, classes, kept = traditional_nms(boxes, scores, self.nms_iou, self.top_k, self.pixel_scale,
                                                  max(self.conf_threshold, self.score_threshold))
        return candidates[rows], classes, kept.astype(np.float32), boxes[rows]

    def decode(self, loc: np.ndarray, conf: np.ndarray, coeffs: np.ndarray, proto: np.ndarray, priors: np.ndarray,
               size: tuple[int, int]) -> Instances:
        """One image's outputs -> Instances at frame ``size`` (w, h)."""
        index, classes, scores, boxes = self.nms_survivors(loc, conf, priors)
        if not len(index):
            return Instances.empty(size[1], size[0], self.class_names)
        crops = crop_bounds_all(boxes, proto.shape)
        inside = prototype_masks(np.asarray(proto, np.float32), coeffs[index].astype(np.float32), crops)
        if self.maskness_power > 0:
            scores = scores * maskness(inside, self.mask_threshold) ** self.maskness_power
            keep = np.argsort(-scores, kind="stable")
            if self.score_threshold > 0:
                keep = keep[scores[keep] > self.score_threshold]
            classes, scores, boxes, crops = classes[keep], scores[keep], boxes[keep], crops[keep]
            inside = [inside[i] for i in keep]
        pixel_boxes = frame_boxes(boxes, size)
        masks = upsample_masks(inside, crops, proto.shape, size, self.mask_threshold,
                               pixel_boxes if self.mask_crop == "box" else None)
        return Instances(classes=classes, scores=scores, boxes=pixel_boxes, masks=masks,
                         class_names=self.class_names)
