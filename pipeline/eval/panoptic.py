"""Panoptic quality (PQ, SQ, RQ; Kirillov et al. 2019), accumulated image by image, and the synthetic world's
frames as panoptic ground truth.

Definitions, as the COCO panoptic API computes them:

- A predicted and a ground-truth segment of the same class match when their IoU is above 0.5 (which
  makes matches unique). The union leaves out the predicted segment's pixels that are void in the
  ground truth: a prediction is not penalised for labelling what nobody labelled.
- Per class: TP = matched pairs, FN = unmatched ground-truth segments, FP = unmatched predicted
  segments, except those more than half of whose pixels are void in the ground truth (not counted).
  PQ = sum of matched IoUs / (TP + FP/2 + FN/2) = SQ * RQ, SQ = mean matched IoU, RQ = TP / (TP + FP/2 +
  FN/2). A class with TP + FP + FN = 0 over the whole evaluation has no PQ (NaN) and is left out of the
  means; a class that occurs but is never matched counts with PQ = SQ = RQ = 0.
- The counts are summed over all images before dividing (the dataset-level PQ that papers report,
  not a mean of per-image PQ).
- Ground-truth crowd regions (COCO ``iscrowd``) are not modelled: our ground truths (the synthetic
  world, derived CamVid instances) have none.

The segment matching is vectorised: one ``np.unique`` over ``gt_id * 2^32 + pred_id`` of all pixels gives
every overlapping pair with its intersection, and everything after works on that short table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from pipeline.labels import CAMVID
from pipeline.panoptic import CAMVID_THINGS, panoptic_from_ids
from pipeline.synth.frame import SynthFrame
from pipeline.types import PanopticMap

_SHIFT = np.int64(1) << 32  # ids are int32: gt_id * _SHIFT + pred_id is a unique int64 per pair


@dataclass(frozen=True)
class PQSummary:
    pq: float
    sq: float
    rq: float
    classes: int  # classes averaged (those with TP + FP + FN > 0)


@dataclass(frozen=True)
class PanopticScores:
    """Per class (NaN where the class never occurred) and the means over all, thing and stuff classes."""

    classes: tuple[str, ...]
    isthing: np.ndarray  # (K,) bool
    pq: np.ndarray  # (K,) float64
    sq: np.ndarray
    rq: np.ndarray
    tp: np.ndarray  # (K,) int64
    fp: np.ndarray
    fn: np.ndarray
    all: PQSummary
    things: PQSummary
    stuff: PQSummary


class PanopticAccumulator:
    """``acc.update(gt, pred)`` per image, ``acc.scores()`` at the end. Both maps use the same panoptic
    classes; ``things`` names the thing classes (for the thing/stuff means)."""

    def __init__(self, classes: tuple[str, ...], things: Iterable[str]):
        self.classes = tuple(classes)
        self.isthing = np.isin(np.array(self.classes), list(things))
        k = len(self.classes)
        self.tp = np.zeros(k, np.int64)
        self.fp = np.zeros(k, np.int64)
        self.fn = np.zeros(k, np.int64)
        self.iou = np.zeros(k, np.float64)  # sum of the matched pairs' IoU
        self.images = 0

    def update(self, gt: PanopticMap, pred: PanopticMap) -> None:
        if gt.ids.shape != pred.ids.shape:
            raise ValueError(f"ground truth {gt.ids.shape} and prediction {pred.ids.shape} differ in shape")
        for m in (gt, pred):
            if m.classes != self.classes:
                raise ValueError(f"a panoptic map has classes {m.classes}, the evaluation {self.classes}")
        k = len(self.classes)
        pairs, inter = np.unique(gt.ids.ravel().astype(np.int64) * _SHIFT + pred.ids.ravel(), return_counts=True)
        g_cat, g = _segment_index(gt, pairs // _SHIFT)  # g = -1 for void
        p_cat, p = _segment_index(pred, pairs % _SHIFT)
        g_area = np.bincount(g[g >= 0], inter[g >= 0], minlength=len(g_cat))
        p_area = np.bincount(p[p >= 0], inter[p >= 0], minlength=len(p_cat))
        in_void = (g < 0) & (p >= 0)
        p_void = np.bincount(p[in_void], inter[in_void], minlength=len(p_cat))

        both = (g >= 0) & (p >= 0)
        g, p, inter = g[both], p[both], inter[both]
        same = g_cat[g] == p_cat[p]
        g, p, inter = g[same], p[same], inter[same]
        iou = inter / (g_area[g] + p_area[p] - inter - p_void[p])
        match = iou > 0.5
        g_hit = np.zeros(len(g_cat), bool)
        g_hit[g[match]] = True
        p_hit = np.zeros(len(p_cat), bool)
        p_hit[p[match]] = True

        self.tp += np.bincount(g_cat[g[match]], minlength=k)
        self.iou += np.bincount(g_cat[g[match]], iou[match], minlength=k)
        self.fn += np.bincount(g_cat[~g_hit & (g_area > 0)], minlength=k)
        counted = ~p_hit & (p_area > 0) & (p_void <= 0.5 * p_area)
        self.fp += np.bincount(p_cat[counted], minlength=k)
        self.images += 1

    def scores(self) -> PanopticScores:
        tp, fp, fn = self.tp.astype(np.float64), self.fp.astype(np.float64), self.fn.astype(np.float64)
        denominator = tp + 0.5 * fp + 0.5 * fn
        present = denominator > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            pq = np.where(present, self.iou / denominator, np.nan)
            rq = np.where(present, tp / denominator, np.nan)
            sq = np.where(present, np.where(tp > 0, self.iou / tp, 0.0), np.nan)

        def summary(selected: np.ndarray) -> PQSummary:
            use = selected & present
            if not use.any():
                return PQSummary(float("nan"), float("nan"), float("nan"), 0)
            return PQSummary(float(pq[use].mean()), float(sq[use].mean()), float(rq[use].mean()), int(use.sum()))

        everything = np.ones(len(self.classes), bool)
        return PanopticScores(self.classes, self.isthing, pq, sq, rq, self.tp.copy(), self.fp.copy(),
                              self.fn.copy(), summary(everything), summary(self.isthing), summary(~self.isthing))


def _segment_index(panoptic: PanopticMap, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The categories of ``panoptic``'s segments, and for each of ``ids`` its segment's position among them
    (-1 for void). Raises ValueError for a pixel id that no segment declares."""
    categories = np.array([s.category for s in panoptic.segments], np.int64)
    # a sentinel id past every real one, so that searchsorted always lands on an entry
    seg_ids = np.array([s.id for s in panoptic.segments] + [np.iinfo(np.int64).max], np.int64)
    order = np.argsort(seg_ids)
    index = order[np.searchsorted(seg_ids[order], ids)]
    known = seg_ids[index] == ids
    stray = ~known & (ids != 0)
    if stray.any():
        raise ValueError(f"pixel id {int(ids[stray][0])} belongs to no segment of the panoptic map")
    return categories, np.where(known, index, -1)


def synth_ground_truth(frame: SynthFrame) -> PanopticMap:
    """A synthetic frame's exact panoptic ground truth (CamVid classes; Car, Pedestrian and Bicyclist are
    things, one segment per agent with its track id), built from its label and instance-id maps."""
    return panoptic_from_ids(frame.semantic, frame.instance_ids, CAMVID, CAMVID_THINGS)
