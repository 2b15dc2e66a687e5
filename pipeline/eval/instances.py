"""Mask AP of instance predictions against ground-truth instances, computed by pycocotools' COCOeval.

COCOeval is the reference every instance-segmentation paper (YOLACT's included) reports, so we feed it
instead of re-implementing it: each image's ground-truth and predicted :class:`Instances` become COCO
annotations in memory (masks as COCO RLE from :mod:`pipeline.io.rle`), and the numbers are read from its
precision table (IoU thresholds 0.50:0.05:0.95, 101 recall points, area "all", up to 100 detections per
image; COCOeval's own summary prints them the same way).

Classes are matched by NAME, so a model whose class list differs from the ground truth's (``Car`` at
index 0 of a 3-class model, at index 8 of CamVid) is scored correctly; instances of classes outside
the evaluated ``classes`` are left out on both sides. A class with no ground-truth instance in the
whole evaluation has no AP (NaN), and is left out of the means, as in COCOeval.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

import numpy as np

from pipeline.errors import EdgeSegError
from pipeline.io import rle
from pipeline.types import Instances


SIZES = ("small", "medium", "large")
SIZE_EDGES = (32.0 ** 2, 96.0 ** 2)  # COCOeval's areaRng bounds
RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # COCOeval's recThrs: where its precision table is read


@dataclass(frozen=True)
class InstanceScores:
    ap: float  # mean over IoU 0.50:0.95 and classes
    ap50: float
    ap75: float
    ap_per_class: dict[str, float]  # NaN for a class without ground truth
    ap50_per_class: dict[str, float]
    ground_truth_per_class: dict[str, int]
    # COCO's object sizes by mask area in image pixels: small < 32^2, medium < 96^2, large; NaN where none
    ap50_by_size: dict[str, float]
    ground_truth_by_size: dict[str, int]
    # precision at IoU 0.5 at each of RECALL_POINTS (interpolated as COCOeval does, 0 past the highest recall
    # reached; NaN for a class without ground truth): the curves behind ap50_per_class and ap50_by_size
    pr50_per_class: dict[str, np.ndarray]
    pr50_by_size: dict[str, np.ndarray]  # the mean over classes at each recall point
    images: int
    ground_truth: int  # instances
    detections: int


class InstanceAccumulator:
    """``acc.update(gt, pred)`` per image, ``acc.scores()`` at the end (one COCOeval over all images)."""

    def __init__(self, classes: tuple[str, ...]):
        self.classes = tuple(classes)
        self._category = {name: k + 1 for k, name in enumerate(self.classes)}  # COCO ids start at 1
        self._images: list[dict] = []
        self._gt: list[dict] = []
        self._dt: list[dict] = []

    def update(self, gt: Instances, pred: Instances) -> None:
        height, width = gt.masks.shape[1:]
        if pred.masks.shape[1:] != (height, width):
            raise ValueError(f"ground truth masks {(height, width)} and predicted masks {pred.masks.shape[1:]} "
                             f"differ in size")
        image_id = len(self._images) + 1
        self._images.append({"id": image_id, "height": height, "width": width})
        self._gt.extend(self._annotations(gt, image_id, len(self._gt), scored=False))
        self._dt.extend(self._annotations(pred, image_id, len(self._dt), scored=True))

    def _annotations(self, instances: Instances, image_id: int, first_id: int, scored: bool) -> list[dict]:
        areas = instances.masks.sum(axis=(1, 2))
        boxes = instances.boxes.astype(np.float64)
        records = []
        for i, c in enumerate(instances.classes.tolist()):
            category = self._category.get(instances.class_names[c])
            if category is None:
                continue
            encoded = rle.encode(instances.masks[i])
            x1, y1, x2, y2 = boxes[i].tolist()
            record = {"id": first_id + len(records) + 1, "image_id": image_id, "category_id": category,
                      "segmentation": {"size": encoded["size"], "counts": encoded["counts"].encode("ascii")},
                      "area": float(areas[i]), "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0}
            if scored:
                record["score"] = float(instances.scores[i])
            records.append(record)
        return records

    def scores(self) -> InstanceScores:
        try:
            from pycocotools.coco import COCO  # noqa: PLC0415  (only mask AP needs it: the `eval` extra)
            from pycocotools.cocoeval import COCOeval  # noqa: PLC0415
        except ImportError:
            raise EdgeSegError("mask AP needs pycocotools: pip install -e '.[eval]'") from None
        categories = [{"id": k, "name": name} for name, k in self._category.items()]
        sets = []
        for annotations in (self._gt, self._dt):
            coco = COCO()
            coco.dataset = {"images": self._images, "categories": categories, "annotations": annotations}
            sets.append(coco)
        # COCO and COCOeval report progress on stdout; pycocotools warns about numpy 2's __array__ protocol
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for coco in sets:
                coco.createIndex()
            evaluation = COCOeval(sets[0], sets[1], iouType="segm")
            evaluation.evaluate()
            evaluation.accumulate()
        # precision: (IoU thresholds, recall points, classes, area ranges, max detections); -1 = no ground truth
        precision = evaluation.eval["precision"][:, :, :, 0, -1]
        per_iou_class = _mean_defined(precision, axis=1)  # (T, K)
        ap_class = _mean_defined(precision.transpose(2, 0, 1).reshape(len(self.classes), -1), axis=1)
        ap50_class = per_iou_class[0]
        iou_50, iou_75 = 0, 5
        # area ranges 1..3 of COCOeval's defaults are small, medium, large (0 is all)
        by_size = {name: _mean_defined(_mean_defined(evaluation.eval["precision"][iou_50, :, :, a, -1], axis=0))
                   for a, name in enumerate(SIZES, start=1)}
        pr50 = evaluation.eval["precision"][iou_50, :, :, :, -1]  # (recall points, classes, area ranges)
        gt_areas = np.array([a["area"] for a in self._gt])
        counts = np.searchsorted(SIZE_EDGES, gt_areas, side="right") if len(gt_areas) else np.zeros(0, int)
        return InstanceScores(
            ap=_mean_defined(ap_class), ap50=_mean_defined(ap50_class), ap75=_mean_defined(per_iou_class[iou_75]),
            ap_per_class=dict(zip(self.classes, ap_class.tolist())),
            ap50_per_class=dict(zip(self.classes, per_iou_class[iou_50].tolist())),
            ground_truth_per_class={name: sum(a["category_id"] == k for a in self._gt) for name, k in self._category.items()},
            ap50_by_size=by_size, ground_truth_by_size={name: int((counts == k).sum()) for k, name in enumerate(SIZES)},
            pr50_per_class={name: np.where(pr50[:, k, 0] > -1, pr50[:, k, 0], np.nan)
                            for k, name in enumerate(self.classes)},
            pr50_by_size={name: _mean_defined(pr50[:, :, a], axis=1) for a, name in enumerate(SIZES, start=1)},
            images=len(self._images), ground_truth=len(self._gt), detections=len(self._dt))


def _mean_defined(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Mean over the entries > -1 (COCOeval's marker for "no ground truth"); NaN where there are none."""
    defined = values > -1
    total = np.where(defined, values, 0.0).sum(axis=axis)
    count = defined.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return float(mean) if axis is None else mean
