"""Similarity between tracks and detections, and the assignment that pairs them.

Similarity is box IoU, blended with mask IoU where both the track and the detection carry a mask: the
boxes of two people crossing, or of a car passing behind another, overlap heavily while their masks do
not. Masks are kept cropped to their boxes (:class:`MaskCrop`), so a track stores a few kB instead of a
full frame, and two masks can only intersect inside the overlap of their boxes: mask IoU reads that
overlap only, and only for contested pairs whose box IoU leaves the blended similarity a chance to pass
the gate (see :func:`blend_mask_iou`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

_NO_PAIRS = np.zeros(0, np.int64)


@dataclass(frozen=True, slots=True)
class MaskCrop:
    """An object's mask cut to the integer box it was taken in."""

    mask: np.ndarray  # (y1 - y0, x1 - x0) bool, read-only
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels (x1, y1 exclusive)
    area: int  # pixels set


def crop_masks(masks: np.ndarray, boxes: np.ndarray, rows: np.ndarray) -> list[MaskCrop | None]:
    """Full-frame masks ``masks[rows]`` (of (N, H, W)) cut to their boxes ``boxes[rows]`` (x1y1x2y2), widened to
    whole pixels and clipped to the frame; None where the box has no pixels in the frame or the mask none
    inside its box. Only the box is read: indexing ``masks[rows]`` first would copy whole frames. The crops
    are copies, so a track may keep them after the caller reuses its mask buffer."""
    height, width = masks.shape[1:]
    lo = np.floor(boxes[rows, :2]).astype(np.int64)
    hi = np.ceil(boxes[rows, 2:]).astype(np.int64)
    np.clip(lo, 0, [width, height], out=lo)
    np.clip(hi, 0, [width, height], out=hi)
    crops: list[MaskCrop | None] = []
    for row, (x0, y0), (x1, y1) in zip(rows.tolist(), lo.tolist(), hi.tolist()):
        crop = masks[row, y0:y1, x0:x1].copy() if x1 > x0 and y1 > y0 else None
        area = int(np.count_nonzero(crop)) if crop is not None else 0
        if area:
            crop.flags.writeable = False
            crops.append(MaskCrop(crop, (x0, y0, x1, y1), area))
        else:
            crops.append(None)
    return crops


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of boxes a (N, 4) and b (M, 4), x1y1x2y2. Column by column: on the tracker's small
    matrices numpy's per-call overhead, not arithmetic, is the cost, and 2-D broadcasting needs fewest calls."""
    ax1, ay1, ax2, ay2 = a[:, 0:1], a[:, 1:2], a[:, 2:3], a[:, 3:4]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    iw = np.minimum(ax2, bx2) - np.maximum(ax1, bx1)
    ih = np.minimum(ay2, by2) - np.maximum(ay1, by1)
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    union = ((ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1)) - inter
    return inter / np.maximum(union, 1e-9)


def blend_mask_iou(sim: np.ndarray, track_crops: list[MaskCrop | None], track_centres: np.ndarray,
                   det_crops: list[MaskCrop | None], mask_weight: float, min_sim: float) -> None:
    """In place, for each (track, detection) pair that both have masks: ``sim = (1 - w) * sim + w * maskIoU``.

    ``sim`` (T, D) holds box IoUs. ``track_centres`` (T, 2): each track's predicted box centre; its mask is
    moved by as much as that centre lies from the centre of the box it was cropped in (over the short time
    between detections an object's mask mostly translates).

    Masks arbitrate between overlapping objects, so mask IoU is computed only for contested pairs: pairs
    whose track or detection has another candidate. A pair that is its track's and its detection's only
    candidate keeps its box IoU: no other pairing competes with it. Candidates are pairs with overlapping
    boxes whose box IoU could pass ``min_sim`` with a perfect mask IoU. In a frame of well separated objects
    no mask pixel is read.
    """
    if mask_weight == 0 or sim.size == 0:
        return
    has_t = np.fromiter((c is not None for c in track_crops), bool, len(track_crops))
    has_d = np.fromiter((c is not None for c in det_crops), bool, len(det_crops))
    floor = (min_sim - mask_weight) / (1 - mask_weight) if mask_weight < 1 else 0.0
    candidate = sim > max(floor, 0.0)
    contested = candidate & ((candidate.sum(axis=1) > 1)[:, None] | (candidate.sum(axis=0) > 1)[None, :])
    rows, cols = np.nonzero(contested & has_t[:, None] & has_d[None, :])
    if len(rows) == 0:
        return
    mask_sim = []
    centres = track_centres.tolist()
    for t, d in zip(rows.tolist(), cols.tolist()):
        tc, dc = track_crops[t], det_crops[d]
        tx0, ty0, tx1, ty1 = tc.box
        dx0, dy0, dx1, dy1 = dc.box
        cx, cy = centres[t]
        shift_x, shift_y = round(cx - (tx0 + tx1) / 2), round(cy - (ty0 + ty1) / 2)
        tx0, ty0 = tx0 + shift_x, ty0 + shift_y  # the track's crop where its box is predicted now
        x0, y0 = max(dx0, tx0), max(dy0, ty0)
        x1, y1 = min(dx1, tx1 + shift_x), min(dy1, ty1 + shift_y)
        inter = 0
        if x1 > x0 and y1 > y0:
            inter = int(np.count_nonzero(np.logical_and(dc.mask[y0 - dy0:y1 - dy0, x0 - dx0:x1 - dx0],
                                                        tc.mask[y0 - ty0:y1 - ty0, x0 - tx0:x1 - tx0])))
        mask_sim.append(inter / (dc.area + tc.area - inter))
    sim[rows, cols] = (1 - mask_weight) * sim[rows, cols] + mask_weight * np.array(mask_sim)


def assign(sim: np.ndarray, min_sim: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pairs with ``sim >= min_sim`` that maximise the total of ``sim - min_sim``:
    a pair is worth its margin over the gate, and leaving a row or column unmatched is worth nothing (the
    objective of ByteTrack's LAPJV with a cost limit). Maximising the number of pairs first instead would
    force weak pairs, e.g. a track on a false positive stealing a neighbour's detection so that the
    neighbour's own track can take a third object's."""
    if sim.size == 0:
        return _NO_PAIRS, _NO_PAIRS
    ok = sim >= min_sim
    if not ok.any():
        return _NO_PAIRS, _NO_PAIRS
    # a pair exactly at the gate is worth a hair more than no pair
    gain = np.where(ok, sim - (min_sim - 1e-9), 0.0)
    r, c = linear_sum_assignment(gain, maximize=True)
    admissible = ok[r, c]
    return r[admissible], c[admissible]
