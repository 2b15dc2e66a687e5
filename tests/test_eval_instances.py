"""Mask AP through pycocotools' COCOeval: hand cases whose precision-recall curve is worked out in the test,
and the synthetic world's exact instances (as predictions they score AP 1; degraded, less)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline.eval.instances import InstanceAccumulator
from pipeline.labels import CAMVID
from pipeline.synth import SynthWorld
from pipeline.types import Instances

pytest.importorskip("pycocotools", reason="mask AP is computed by pycocotools (the `eval` extra)")

THINGS = ("Car", "Pedestrian", "Bicyclist")
SHAPE = (40, 60)


def square(row: int, col: int, size: int = 20) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[row:row + size, col:col + size] = True
    return m


def insts(masks: list[np.ndarray], classes: list[str], scores: list[float] | None = None) -> Instances:
    n = len(masks)
    return Instances(np.array([THINGS.index(c) for c in classes], np.int32),
                     np.array(scores if scores is not None else [1.0] * n, np.float32), np.zeros((n, 4), np.float32),
                     np.stack(masks) if n else np.zeros((0, *SHAPE), bool), THINGS)


def evaluate(pairs) -> object:
    acc = InstanceAccumulator(THINGS)
    for gt, pred in pairs:
        acc.update(gt, pred)
    return acc.scores()


def test_one_of_two_objects_missed():
    """Two cars, one found exactly (score 0.9). At every IoU threshold the PR curve is one point, precision 1
    at recall 1/2; COCO samples the interpolated precision at 101 recall levels 0, 0.01, ..., 1: the 51
    levels up to 0.50 read 1, the 50 above read 0 -> AP = AP50 = AP75 = 51/101 (not 0.5)."""
    gt = insts([square(0, 0), square(20, 40)], ["Car", "Car"])
    s = evaluate([(gt, insts([square(0, 0)], ["Car"], [0.9]))])
    assert (s.ap, s.ap50, s.ap75) == (pytest.approx(51 / 101), pytest.approx(51 / 101), pytest.approx(51 / 101))
    assert s.ap50_per_class["Car"] == pytest.approx(51 / 101)
    assert np.isnan(s.ap50_per_class["Pedestrian"])  # no ground truth: no AP, left out of the mean
    assert (s.images, s.ground_truth, s.detections) == (1, 2, 1)
    assert s.ground_truth_per_class == {"Car": 2, "Pedestrian": 0, "Bicyclist": 0}


def test_a_shifted_mask_passes_the_low_iou_thresholds_only():
    """A 20x20 car predicted 4 px to the right: intersection 16x20 = 320, union 480 -> IoU 2/3. Matched at
    the thresholds 0.50, 0.55, 0.60, 0.65 (AP 1 each), missed at 0.70 ... 0.95 (AP 0): AP50 1, AP75 0,
    AP = 4/10."""
    s = evaluate([(insts([square(5, 5)], ["Car"]), insts([square(5, 9)], ["Car"], [0.8]))])
    assert (s.ap50, s.ap75, s.ap) == (pytest.approx(1.0), pytest.approx(0.0), pytest.approx(0.4))


def test_a_confident_false_positive_halves_precision():
    """One gt car; predictions: a wrong car at 0.9, the right one at 0.8. Ranked: precision 0 then 1/2 at
    recall 1; interpolated precision (the best at any recall >= r) is 1/2 at every level -> AP50 = 0.5.
    The same false positive ranked below the true one costs nothing: AP50 = 1."""
    gt = insts([square(0, 0)], ["Car"])
    above = insts([square(20, 40), square(0, 0)], ["Car", "Car"], [0.9, 0.8])
    below = insts([square(20, 40), square(0, 0)], ["Car", "Car"], [0.7, 0.8])
    assert evaluate([(gt, above)]).ap50 == pytest.approx(0.5)
    assert evaluate([(gt, below)]).ap50 == pytest.approx(1.0)


def test_classes_are_matched_by_name_and_a_wrong_class_is_a_miss():
    """A 3-class model (Car = 0) against CamVid-indexed ground truth (Car = 8): matched by name. A correct
    mask with the wrong class is a miss for the true class and a false positive for the other:
    Car AP50 0, Pedestrian no ground truth (NaN)."""
    camvid_gt = Instances(np.array([CAMVID.index("Car")], np.int32), np.ones(1, np.float32),
                          np.zeros((1, 4), np.float32), square(3, 3)[None], CAMVID.classes)
    assert evaluate([(camvid_gt, insts([square(3, 3)], ["Car"], [0.6]))]).ap == pytest.approx(1.0)
    s = evaluate([(camvid_gt, insts([square(3, 3)], ["Pedestrian"], [0.6]))])
    assert s.ap50_per_class["Car"] == 0.0 and np.isnan(s.ap50_per_class["Pedestrian"]) and s.ap50 == 0.0


def test_images_without_detections_or_ground_truth():
    """Detections on an image without ground truth are false positives; an image with ground truth and no
    detections misses them. Image 1: car found (0.9); image 2: no gt, a car predicted (0.95); image 3: a car,
    nothing predicted. Ranked: FP (0.95) then TP (0.9): precision 1/2 at recall 1/2 -> the 51 levels up to
    0.5 read 1/2, the rest 0 -> AP50 = 25.5/101."""
    empty = insts([], [])
    s = evaluate([(insts([square(0, 0)], ["Car"]), insts([square(0, 0)], ["Car"], [0.9])),
                  (empty, insts([square(10, 10)], ["Car"], [0.95])),
                  (insts([square(5, 5)], ["Car"]), empty)])
    assert s.ap50 == pytest.approx(51 * 0.5 / 101)
    assert (s.images, s.ground_truth, s.detections) == (3, 2, 2)
    with pytest.raises(ValueError, match=r"ground truth masks \(40, 60\) and predicted masks \(4, 4\) differ"):
        InstanceAccumulator(THINGS).update(empty, Instances.empty(4, 4, THINGS))


@pytest.fixture(scope="module")
def synth_truth():
    world = SynthWorld(7, size=(640, 360))
    return [world.render(i).to_instances() for i in range(0, 90, 30)]


def test_synthetic_ground_truth_as_predictions_scores_one_and_degrading_lowers_it(synth_truth):
    """The synthetic world's instances (cars, pedestrians, cyclists, from 1-pixel specks to 40,000 px) scored
    against themselves: AP = AP50 = AP75 = 1 for every class present.

    Every mask shifted 3 px right: large objects keep IoU > 0.5 but lose the high thresholds, the many
    small ones (pedestrians of a few pixels) miss altogether: AP < AP50 < 1 and AP75 < AP50.

    Every second object of each class dropped: what remains is exact at every threshold, so per class
    the PR curve is precision 1 up to recall r = kept / total, and AP = AP50 = (recall levels of the 101
    that are <= r) / 101, the mean of those over the classes."""
    s = evaluate((t, t) for t in synth_truth)
    assert (s.ap, s.ap50, s.ap75) == (1.0, 1.0, 1.0)
    assert {c for c, v in s.ap50_per_class.items() if not np.isnan(v)} == {
        CAMVID.classes[c] for t in synth_truth for c in t.classes}

    shifted = [dataclasses.replace(t, masks=np.roll(t.masks, 3, axis=2)) for t in synth_truth]
    moved = evaluate(zip(synth_truth, shifted))
    assert moved.ap < moved.ap50 < 1.0 and moved.ap75 < moved.ap50  # measured 0.20, 0.39, 0.11

    halved, kept, total = [], {}, {}
    for t in synth_truth:
        keep = np.zeros(len(t), bool)
        for c in np.unique(t.classes):
            members = np.flatnonzero(t.classes == c)
            keep[members[::2]] = True
            name = CAMVID.classes[c]
            kept[name] = kept.get(name, 0) + len(members[::2])
            total[name] = total.get(name, 0) + len(members)
        halved.append(Instances(t.classes[keep], t.scores[keep], t.boxes[keep], t.masks[keep], t.class_names))
    dropped = evaluate(zip(synth_truth, halved))
    levels = np.linspace(0.0, 1.0, 101)
    expected = {name: np.count_nonzero(levels <= kept[name] / total[name]) / 101 for name in total}
    assert {c: v for c, v in dropped.ap50_per_class.items() if c in expected} == pytest.approx(expected)
    assert dropped.ap == pytest.approx(np.mean(list(expected.values())))
    assert dropped.ap50 == pytest.approx(dropped.ap) and dropped.ap < 0.8


def test_ap50_by_coco_object_size():
    """A small car (10x10 = 100 px < 32^2) found and a medium one (35x35 = 1225 px) missed: small AP50 1,
    medium AP50 0, no large objects (NaN)."""
    gt = insts([square(0, 0, 10), square(2, 20, 35)], ["Car", "Car"])
    s = evaluate([(gt, insts([square(0, 0, 10)], ["Car"], [0.9]))])
    assert s.ap50_by_size["small"] == pytest.approx(1.0) and s.ap50_by_size["medium"] == pytest.approx(0.0)
    assert np.isnan(s.ap50_by_size["large"])
    assert s.ground_truth_by_size == {"small": 1, "medium": 1, "large": 0}
