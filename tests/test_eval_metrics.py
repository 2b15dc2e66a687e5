"""Semantic metrics against small cases worked out by hand (the arithmetic is in each docstring)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.eval.semantic import SemanticAccumulator, confusion_matrix, scores


def test_hand_computed_case_with_void_ground_truth():
    """K = 3, void = 255. The void pixel is ignored although something (2) is predicted there.

    labelled pairs (gt, pred): (0,0) (0,1) (1,1) (1,1) (2,0)
    class 0: TP 1, FN 1 (0->1), FP 1 (2->0)  IoU 1/3, acc 1/2
    class 1: TP 2, FN 0,        FP 1 (0->1)  IoU 2/3, acc 2/2
    class 2: TP 0, FN 1 (2->0), FP 0         IoU 0,   acc 0/1
    mIoU (1/3 + 2/3 + 0) / 3 = 1/3; pixel acc 3/5; mean acc (1/2 + 1 + 0) / 3 = 1/2
    """
    gt = np.array([[0, 0, 1], [1, 2, 255]], np.uint8)
    pred = np.array([[0, 1, 1], [1, 0, 2]], np.uint8)
    matrix = confusion_matrix(gt, pred, 3)
    assert matrix.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0]]
    s = scores(matrix)
    np.testing.assert_allclose(s.iou, [1 / 3, 2 / 3, 0.0])
    np.testing.assert_allclose(s.class_accuracy, [1 / 2, 1.0, 0.0])
    assert s.miou == pytest.approx(1 / 3)
    assert s.pixel_accuracy == pytest.approx(3 / 5)
    assert s.mean_accuracy == pytest.approx(1 / 2)
    assert s.pixels == 5


def test_prediction_outside_class_range_is_a_miss_not_a_false_positive():
    """A 4th "void" output channel (index 3) with K = 3 classes: gt [0 0 1 1], pred [0 3 1 1].

    class 0: TP 1, FN 1 (predicted void)  IoU 1/2, acc 1/2
    class 1: TP 2                         IoU 1,   acc 1
    class 2: in neither gt nor pred       IoU undefined -> left out of the means
    mIoU (1/2 + 1) / 2 = 3/4; pixel acc 3/4; mean acc 3/4.
    (Clipping 3 to class 2 instead would have made class 2 IoU 0 and mIoU 1/2.)
    """
    s = scores(confusion_matrix(np.array([0, 0, 1, 1]), np.array([0, 3, 1, 1]), 3))
    assert s.iou[0] == pytest.approx(0.5) and s.iou[1] == pytest.approx(1.0) and math.isnan(s.iou[2])
    assert s.miou == pytest.approx(0.75)
    assert s.pixel_accuracy == pytest.approx(0.75)
    assert s.mean_accuracy == pytest.approx(0.75)


def test_class_only_predicted_counts_in_the_mean():
    """gt [0 0], pred [0 1]: class 1 never occurs in gt but is predicted once.
    class 0: TP 1, FN 1 -> IoU 1/2; class 1: TP 0, FP 1 -> IoU 0 (defined: union 1).
    mIoU (1/2 + 0) / 2 = 1/4; mean accuracy only over gt classes: class 0 acc 1/2."""
    s = scores(confusion_matrix(np.array([0, 0]), np.array([0, 1]), 2))
    assert s.miou == pytest.approx(0.25)
    assert math.isnan(s.class_accuracy[1])
    assert s.mean_accuracy == pytest.approx(0.5)


def test_accumulator_pools_pixels_over_images():
    """Image A: gt [0 0 0 0], pred [0 0 0 0]. Image B: gt [1 1], pred [0 0].
    Pooled: class 0 TP 4, FP 2 -> IoU 4/6; class 1 TP 0, FN 2 -> IoU 0; mIoU 1/3; pixel acc 4/6.
    (The mean of per-image mIoUs would be (1 + 0) / 2 = 1/2: not what we report.)"""
    acc = SemanticAccumulator(2)
    acc.update(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    acc.update(np.ones((1, 2), np.uint8), np.zeros((1, 2), np.uint8))
    s = acc.scores()
    assert acc.images == 2
    assert s.miou == pytest.approx(1 / 3)
    assert s.pixel_accuracy == pytest.approx(4 / 6)


def test_matches_a_per_class_mask_count_on_random_maps(rng):
    """bincount path vs the definition evaluated class by class with boolean masks."""
    k, void = 11, 11
    gt = rng.integers(0, k + 1, (90, 120)).astype(np.uint8)  # 0..11, 11 = void
    pred = rng.integers(0, k + 1, (90, 120)).astype(np.uint8)  # 11 = a void output channel
    labelled = gt != void
    expected = []
    for c in range(k):
        tp = np.sum(labelled & (gt == c) & (pred == c))
        fp = np.sum(labelled & (gt != c) & (pred == c))
        fn = np.sum(labelled & (gt == c) & (pred != c))
        expected.append(tp / (tp + fp + fn))
    s = scores(confusion_matrix(gt, pred, k))
    np.testing.assert_allclose(s.iou, expected)
    assert s.pixel_accuracy == pytest.approx(np.sum(labelled & (gt == pred)) / labelled.sum())


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 2)
