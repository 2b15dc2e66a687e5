"""Semantic segmentation metrics from one confusion matrix, accumulated image by image.

Conventions (the ones CamVid and Cityscapes benchmarks use, made explicit):

- Ground truth values outside ``0..K-1`` (the dataset's void label, e.g. CamVid 11 or
  Cityscapes 255) are ignored: those pixels count nowhere.
- Predictions outside ``0..K-1`` on a labelled pixel are misses: a false negative for the true
  class and a false positive for no class. Nets such as the official ESPNet CamVid model emit a
  12th "void" channel; predicting void on a road pixel costs road recall like any other error.
- IoU_c = TP / (TP + FP + FN). mIoU averages IoU over the classes that occur in the ground truth
  or in the predictions of the evaluated images; a class absent from both has no defined IoU and
  is left out (reported as NaN per class). On a full CamVid split every one of the 11 classes
  occurs, so this equals the all-11-classes mean that CamVid papers report; on a few images
  (``--limit``) it avoids counting absent classes as 0 or 1.
- Pixel accuracy = correctly labelled pixels / labelled pixels. Mean accuracy = mean over classes
  present in the ground truth of TP / (pixels of that class).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SemanticScores:
    """Metrics of a confusion matrix; NaN marks a class without a defined value."""

    iou: np.ndarray  # (K,) float64
    class_accuracy: np.ndarray  # (K,) float64, recall per class
    miou: float
    pixel_accuracy: float
    mean_accuracy: float
    pixels: int  # labelled pixels counted


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K+1) int64 counts: row = true class, column = predicted class, column K = any prediction
    outside 0..K-1. Ground truth outside 0..K-1 (void) is dropped."""
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    k = num_classes
    gt = gt.ravel().astype(np.int64)
    pred = pred.ravel().astype(np.int64)
    keep = (gt >= 0) & (gt < k)
    gt, pred = gt[keep], pred[keep]
    pred = np.where((pred >= 0) & (pred < k), pred, k)
    return np.bincount(gt * (k + 1) + pred, minlength=k * (k + 1)).reshape(k, k + 1)


def scores(matrix: np.ndarray) -> SemanticScores:
    """Metrics from a (K, K+1) matrix of :func:`confusion_matrix`."""
    k = matrix.shape[0]
    tp = np.diag(matrix[:, :k]).astype(np.float64)
    gt_pixels = matrix.sum(1).astype(np.float64)  # TP + FN (misses into column K included)
    predicted = matrix[:, :k].sum(0).astype(np.float64)  # TP + FP
    union = gt_pixels + predicted - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        class_accuracy = np.where(gt_pixels > 0, tp / gt_pixels, np.nan)
    total = int(gt_pixels.sum())
    return SemanticScores(
        iou=iou,
        class_accuracy=class_accuracy,
        miou=_nanmean(iou),
        pixel_accuracy=float(tp.sum() / total) if total else float("nan"),
        mean_accuracy=_nanmean(class_accuracy),
        pixels=total,
    )


def _nanmean(values: np.ndarray) -> float:
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


class SemanticAccumulator:
    """``acc.update(gt, pred)`` per image, ``acc.scores()`` at the end: the metrics of all pixels of all
    images together (not a mean of per-image metrics, which would overweight small objects in
    images where they are rare)."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes + 1), np.int64)
        self.images = 0

    def update(self, gt: np.ndarray, pred: np.ndarray) -> None:
        self.matrix += confusion_matrix(gt, pred, self.num_classes)
        self.images += 1

    def scores(self) -> SemanticScores:
        return scores(self.matrix)
