"""YolactDecoder: YOLACT head outputs -> Instances, with the official Detect + postprocess semantics.

Hand-built cases pin each step (box decoding, Fast vs traditional NMS, per-class and global top-k, score
threshold, crop padding, upsampling to frames of any size); an independent torch re-implementation of the
official code and a full-frame cv2 resize check the whole on random outputs.
"""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from pipeline.decoders import YolactDecoder
from pipeline.decoders.yolact import (crop_bounds_all, decode_boxes, fast_nms, greedy_nms, prototype_masks,
                                      traditional_nms, upsample_masks)
from pipeline.errors import EdgeSegError
from pipeline.modelcard import ModelCard


def outputs(priors, scores, coeffs, proto, loc=None) -> dict[str, np.ndarray]:
    """One image's head outputs: ``scores`` (P, C) foreground softmax scores (background = the rest)."""
    scores = np.asarray(scores, np.float32)
    conf = np.concatenate([1 - scores.sum(1, keepdims=True), scores], axis=1)
    loc = np.zeros((len(priors), 4), np.float32) if loc is None else loc
    return {"loc": loc[None].astype(np.float32), "conf": conf[None], "mask": np.asarray(coeffs, np.float32)[None],
            "proto": np.asarray(proto, np.float32)[None], "priors": np.asarray(priors, np.float32)}


def square_priors(pixel_boxes, side: int = 100) -> np.ndarray:
    """x1 y1 x2 y2 boxes in pixels of a ``side``-pixel input -> priors (cx, cy, w, h) normalised."""
    b = np.asarray(pixel_boxes, np.float64) / side
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)


def flat_proto(n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A 4x4 one-prototype map and coefficients giving every detection a mask covering its box."""
    return np.full((4, 4, 1), 10, np.float32), np.ones((n, 1), np.float32)


def test_decode_boxes_applies_variances_0_1_and_0_2():
    """Centre moves by offset x 0.1 x prior size, size scales by exp(offset x 0.2)."""
    prior = np.array([[0.5, 0.5, 0.2, 0.4]], np.float32)
    loc = np.array([[1.0, -2.0, np.log(2) / 0.2, 0.0]], np.float32)
    # cx = 0.5 + 1 * 0.1 * 0.2 = 0.52, cy = 0.5 - 2 * 0.1 * 0.4 = 0.42, w = 0.2 * 2 = 0.4, h = 0.4
    np.testing.assert_allclose(decode_boxes(loc, prior), [[0.32, 0.22, 0.72, 0.62]], atol=1e-6)


@pytest.mark.parametrize("nms, kept", [("fast", [0]), ("traditional", [0, 2])])
def test_fast_nms_drops_a_chain_that_greedy_nms_keeps(nms, kept):
    """A (0.9) overlaps B (0.8) with IoU 7/13 = 0.54, B overlaps C (0.7) with 0.54, A and C only 4/16.
    Greedy NMS drops B, and then nothing above C suppresses it. Fast NMS drops B and also C, because a
    box is judged against every higher-scoring box, suppressed or not (the column max)."""
    pixel = [[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10]]
    proto, coeffs = flat_proto(3)
    decoder = YolactDecoder(classes=["thing"], nms=nms, input_size=100)
    result = decoder(outputs(square_priors(pixel), [[0.9], [0.8], [0.7]], coeffs, proto), [(100, 100)])[0]
    np.testing.assert_allclose(result.boxes, np.asarray(pixel, np.float32)[kept], atol=1e-4)
    np.testing.assert_allclose(result.scores, np.array([0.9, 0.8, 0.7], np.float32)[kept])
    assert result.classes.tolist() == [0] * len(kept)


def test_iou_exactly_at_the_threshold_fast_keeps_greedy_drops():
    """Official conventions: Fast NMS keeps IoU <= threshold; the Cython greedy NMS drops IoU >= it and
    counts the end pixel (areas (x2 - x1 + 1) * (y2 - y1 + 1))."""
    boxes = np.array([[0, 0, 0.5, 0.25], [0, 0, 0.25, 0.25]], np.float32)  # IoU exactly 0.5
    rows, classes, scores = fast_nms(boxes, np.array([[0.9], [0.8]], np.float32), 0.5, 200, 100)
    assert rows.tolist() == [0, 1] and classes.tolist() == [0, 0]
    pixels = np.array([[0, 0, 1, 0], [0, 0, 0, 0]], np.float32)  # areas 2 and 1 with +1, overlap 1: IoU 0.5
    assert greedy_nms(pixels, 0.5).tolist() == [0]
    assert greedy_nms(pixels, 0.51).tolist() == [0, 1]


def test_traditional_nms_counts_pixels_along_each_side_of_a_non_square_input():
    """On a 4x2 input the boxes below are 2x2 and 2x1 pixels with the end pixel counted: IoU 0.5, so the
    second is dropped. Scaling both axes by the width (4) would make them 2x3 and 2x1: IoU 1/3, kept."""
    boxes = np.array([[0, 0, 0.25, 0.5], [0, 0, 0.25, 0]], np.float32)
    scores = np.array([[0.9], [0.8]], np.float32)
    rows, _, _ = traditional_nms(boxes, scores, 0.5, 100, np.array([4, 2, 4, 2], np.float32), 0.05)
    assert rows.tolist() == [0]
    rows, _, _ = traditional_nms(boxes, scores, 0.5, 100, 4.0, 0.05)
    assert rows.tolist() == [0, 1]


@pytest.mark.parametrize("nms", ["fast", "traditional"])
def test_nms_runs_per_class(nms):
    """The same box scored for two classes is kept for both; within a class the duplicate goes."""
    pixel = [[10, 10, 50, 50], [11, 10, 51, 50]]
    scores = [[0.6, 0.0], [0.1, 0.5]]  # prior 0: class 0 at 0.6; prior 1: class 1 at 0.5 (class 0 at 0.1)
    proto, coeffs = flat_proto(2)
    result = YolactDecoder(classes=["a", "b"], nms=nms, score_threshold=0.05)(
        outputs(square_priors(pixel), scores, coeffs, proto), [(100, 100)])[0]
    assert result.classes.tolist() == [0, 1]
    np.testing.assert_allclose(result.scores, [0.6, 0.5])
    # At 0.05 the weak class-0 score of prior 1 is a candidate too; it overlaps prior 0 and is dropped.
    assert len(YolactDecoder(classes=["a", "b"], nms=nms, score_threshold=0.0)(
        outputs(square_priors(pixel), scores, coeffs, proto), [(100, 100)])[0]) == 2


def test_per_class_top_then_global_top_k():
    """Six disjoint boxes: class 0 scores 0.9 0.8 0.7 0.6, class 1 scores 0.85 0.75. With per_class_top 3
    class 0's 0.6 never enters NMS; top_k 4 then keeps the best four over both classes, best first."""
    pixel = [[20 * i, 0, 20 * i + 10, 10] for i in range(6)]
    scores = np.zeros((6, 2), np.float32)
    scores[:4, 0] = [0.9, 0.8, 0.7, 0.6]
    scores[4:, 1] = [0.85, 0.75]
    proto, coeffs = flat_proto(6)
    out = outputs(square_priors(pixel, 120), scores, coeffs, proto)
    result = YolactDecoder(classes=["a", "b"], per_class_top=3, top_k=4)(out, [(120, 120)])[0]
    np.testing.assert_allclose(result.scores, [0.9, 0.85, 0.8, 0.75])
    assert result.classes.tolist() == [0, 1, 0, 1]
    np.testing.assert_allclose(result.boxes[:, 0], [0, 80, 20, 100], atol=1e-4)
    result = YolactDecoder(classes=["a", "b"], per_class_top=3, top_k=100)(out, [(120, 120)])[0]
    np.testing.assert_allclose(result.scores, [0.9, 0.85, 0.8, 0.75, 0.7])  # 0.6 was cut per class


def test_score_threshold_is_strict():
    pixel = [[0, 0, 10, 10], [50, 50, 60, 60]]
    proto, coeffs = flat_proto(2)
    out = outputs(square_priors(pixel), [[0.3], [0.31]], coeffs, proto)
    result = YolactDecoder(classes=["a"], score_threshold=0.3)(out, [(100, 100)])[0]
    np.testing.assert_allclose(result.scores, [0.31])


def rectangle_proto() -> tuple[np.ndarray, np.ndarray]:
    """8x8 prototypes whose combination with coefficients (-1, 1) is +10 on rows 2-5, columns 1-4 and
    -10 elsewhere: after the sigmoid, ~1 inside that rectangle and ~0 outside."""
    proto = np.zeros((8, 8, 2), np.float32)
    proto[..., 0] = 10
    proto[2:6, 1:5, 1] = 20
    return proto, np.array([[-1, 1]], np.float32)


def rectangle(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    """A filled rectangle without its four corner pixels (see the tests below)."""
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    for r in (rows.start, rows.stop - 1):
        for c in (cols.start, cols.stop - 1):
            mask[r, c] = False
    return mask


def test_masks_are_the_prototype_rectangle_scaled_to_frames_of_different_sizes():
    """Bilinear upsampling with half-pixel centres puts the 0.5 crossing of each edge exactly on the
    scaled rectangle's edge for integer scales: rows [2, 6) x columns [1, 5) of the 8x8 map become rows
    [8, 24) x columns [4, 20) of a 32x32 frame and rows [4, 12) x columns [8, 40) of a 64x16 frame. The
    map is a product of a row and a column profile, so each corner pixel multiplies two edge weights
    below 1 and falls under 0.5: x4 both ways 0.625 * 0.625 = 0.39; x8 by x2 0.5625 * 0.75 = 0.42 (its
    neighbours along the edges: 0.625 * 0.875 = 0.55, 0.6875 * 0.75 = 0.52 and 0.5625 * 1 stay in)."""
    proto, coeffs = rectangle_proto()
    prior = [[0.4, 0.5, 0.6, 0.6]]  # box x 0.1-0.7, y 0.2-0.8: holds the rectangle with room to spare
    out = outputs(prior, [[0.9]], coeffs, proto)
    out = {k: (np.concatenate([v, v]) if k != "priors" else v) for k, v in out.items()}  # batch of two
    square, wide = YolactDecoder(classes=["a"])(out, [(32, 32), (64, 16)])
    np.testing.assert_array_equal(square.masks[0], rectangle((32, 32), slice(8, 24), slice(4, 20)))
    np.testing.assert_array_equal(wide.masks[0], rectangle((16, 64), slice(4, 12), slice(8, 40)))
    np.testing.assert_allclose(square.boxes, [[3.2, 6.4, 22.4, 25.6]], atol=1e-4)  # x by width, y by height
    np.testing.assert_allclose(wide.boxes, [[6.4, 3.2, 44.8, 12.8]], atol=1e-4)
    assert square.masks.dtype == bool and square.classes.dtype == np.int32 and square.boxes.dtype == np.float32


def test_crop_keeps_one_prototype_pixel_of_padding():
    """Box x 0-0.25 covers prototype columns 0-1 (of 8); the official crop keeps p < 0.25 * 8 + 1 = 3, so
    columns 1-2 of the rectangle survive and the mask ends where column 2 (~1) meets zeroed column 3:
    frame x 11.5, i.e. columns [4, 12) of a 32-wide frame (without padding it would be [4, 8))."""
    proto, coeffs = rectangle_proto()
    result = YolactDecoder(classes=["a"])(outputs([[0.125, 0.5, 0.25, 0.6]], [[0.9]], coeffs, proto), [(32, 32)])[0]
    np.testing.assert_array_equal(result.masks[0], rectangle((32, 32), slice(8, 24), slice(4, 12)))


def test_box_crop_also_clears_frame_pixels_outside_the_box_itself():
    """The same box is frame x 0-8 (y 6.4-25.6): pixel centres 0.5 .. 7.5 lie inside it, so "box" keeps the
    prototype crop's columns 4-7 and clears 8-11, which the padding let in; rows 8-23 are inside already."""
    proto, coeffs = rectangle_proto()
    out = outputs([[0.125, 0.5, 0.25, 0.6]], [[0.9]], coeffs, proto)
    padded = YolactDecoder(classes=["a"])(out, [(32, 32)])[0].masks[0]
    boxed = YolactDecoder(classes=["a"], mask_crop="box")(out, [(32, 32)])[0].masks[0]
    assert padded[8:24, 8:12].any()
    expected = padded.copy()
    expected[:, 8:] = False
    np.testing.assert_array_equal(boxed, expected)


def test_maskness_rescores_reorders_and_drops():
    """Two detections over the same rectangle (classes a, b: no NMS between them): a scores 0.9 but its mask
    probability inside is sigmoid(0.405) = 0.6, b scores 0.8 with a crisp mask (~1). With power 1 a becomes
    0.54 and ranks second, and a score threshold of 0.6 drops it; power 0 is the official decoding."""
    proto = np.full((8, 8, 1), -10.0, np.float32)
    proto[2:6, 1:5, 0] = 1.0
    coeffs = np.array([[np.log(0.6 / 0.4)], [10.0]], np.float32)
    box = [[0.4, 0.5, 0.6, 0.6]]
    out = outputs(np.concatenate([box, box]), [[0.9, 0.0], [0.0, 0.8]], coeffs, proto)
    plain = YolactDecoder(classes=["a", "b"])(out, [(32, 32)])[0]
    rescored = YolactDecoder(classes=["a", "b"], maskness_power=1.0)(out, [(32, 32)])[0]
    np.testing.assert_allclose(plain.scores, [0.9, 0.8], atol=1e-6)
    assert plain.classes.tolist() == [0, 1] and rescored.classes.tolist() == [1, 0]
    np.testing.assert_allclose(rescored.scores, [0.8, 0.54], atol=1e-4)
    np.testing.assert_array_equal(rescored.masks, plain.masks[::-1])
    np.testing.assert_array_equal(rescored.boxes, plain.boxes[::-1])
    strict = YolactDecoder(classes=["a", "b"], maskness_power=1.0, score_threshold=0.6)(out, [(32, 32)])[0]
    assert strict.classes.tolist() == [1] and strict.masks.shape == (1, 32, 32)
    halved = YolactDecoder(classes=["a", "b"], maskness_power=0.5)(out, [(32, 32)])[0]
    np.testing.assert_allclose(halved.scores, [0.8, 0.9 * 0.6 ** 0.5], atol=1e-4)
    with pytest.raises(ValueError, match="maskness_power"):
        YolactDecoder(classes=["a"], maskness_power=-1)


def official_crop_then_resize(proto, coeffs, boxes, size) -> np.ndarray:
    """The official order, over the whole frame: sigmoid(proto @ coeffs) on the full map, zeroed outside
    ``x1 * w - 1 <= col < x2 * w + 1`` (same for rows), bilinear resize of the full map (cv2's
    INTER_LINEAR on float32 samples at the same half-pixel centres as torch's align_corners=False)."""
    hp, wp, _ = proto.shape
    full = 1 / (1 + np.exp(-(proto @ coeffs.T)))  # (hp, wp, n)
    cols, rows = np.arange(wp)[None, :, None], np.arange(hp)[:, None, None]
    x1, x2 = np.minimum(boxes[:, 0], boxes[:, 2]) * wp, np.maximum(boxes[:, 0], boxes[:, 2]) * wp
    y1, y2 = np.minimum(boxes[:, 1], boxes[:, 3]) * hp, np.maximum(boxes[:, 1], boxes[:, 3]) * hp
    inside = (cols >= x1 - 1) & (cols < x2 + 1) & (rows >= y1 - 1) & (rows < y2 + 1)
    cropped = (full * inside).astype(np.float32)
    return np.stack([cv2.resize(cropped[..., i], size, interpolation=cv2.INTER_LINEAR) for i in range(len(boxes))])


def centres_inside(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, H, W) bool: which frame pixel centres lie in each normalised box (edges included)."""
    width, height = size
    xs = (np.arange(width) + 0.5) / width
    ys = (np.arange(height) + 0.5) / height
    x1, y1, x2, y2 = (np.clip(boxes[:, k], 0, 1)[:, None, None] for k in range(4))
    return (xs >= x1) & (xs <= x2) & (ys[:, None] >= y1) & (ys[:, None] <= y2)


@pytest.mark.parametrize("size", [(301, 157), (960, 540), (20, 13)])  # up, up a lot, down
def test_upsampling_only_inside_boxes_equals_resizing_the_whole_frame(rng, size):
    hp, wp = 23, 37
    proto = np.maximum(rng.normal(size=(hp, wp, 4)), 0).astype(np.float32) * 3
    coeffs = rng.uniform(-1, 1, (40, 4)).astype(np.float32)
    corners = rng.uniform(-0.2, 1.2, (40, 2, 2)).astype(np.float32)  # some boxes reach past the image
    boxes = np.concatenate([corners.min(1), corners.max(1)], 1)
    boxes[:5, 2:] = boxes[:5, :2] + 0.01  # tiny boxes: padding only
    crops = crop_bounds_all(boxes, proto.shape)
    masks = upsample_masks(prototype_masks(proto, coeffs, crops), crops, proto.shape, size, 0.5)
    reference = official_crop_then_resize(proto, coeffs, boxes, size)
    decided = np.abs(reference - 0.5) > 1e-5  # float rounding may flip a value sitting on the threshold
    assert masks.shape == (40, size[1], size[0])
    np.testing.assert_array_equal(masks[decided], reference[decided] > 0.5)
    assert masks.any()
    # mask_crop="box": the same masks, further cut to the pixels whose centres lie in the box
    pixel_boxes = np.clip(boxes * np.array(size * 2, np.float32), 0, np.array(size * 2, np.float32))
    boxed = upsample_masks(prototype_masks(proto, coeffs, crops), crops, proto.shape, size, 0.5, pixel_boxes)
    inside = centres_inside(boxes, size)
    edge = np.zeros_like(decided)  # a centre within float rounding of a box edge may go either way
    for k, axis in ((0, 2), (2, 2), (1, 1), (3, 1)):
        centres = (np.arange(size[0 if axis == 2 else 1]) + 0.5)
        near = np.abs(centres[None, :] - pixel_boxes[:, k:k + 1]) < 1e-3
        edge |= near[:, None, :] if axis == 2 else near[:, :, None]
    sure = decided & ~edge
    np.testing.assert_array_equal(boxed[sure], (reference[sure] > 0.5) & inside[sure])
    assert (masks & ~boxed).any() and not (boxed & ~masks).any()


@pytest.mark.parametrize("nms", ["fast", "traditional"])
def test_nothing_above_threshold_gives_empty_instances(nms):
    proto, coeffs = flat_proto(2)
    out = outputs(square_priors([[0, 0, 10, 10], [5, 5, 30, 30]]), [[0.2], [0.29]], coeffs, proto)
    result = YolactDecoder(classes=["car"], nms=nms)(out, [(64, 48)])[0]
    assert len(result) == 0
    assert result.masks.shape == (0, 48, 64) and result.boxes.shape == (0, 4)
    assert result.class_names == ("car",)


def torch_reference(torch, loc, conf, coeffs, proto, priors, size, score_threshold):
    """The official Detect (Fast NMS, conf_thresh 0.05, top 200 per class, 100 overall) and postprocess,
    re-implemented from the official semantics with torch ops, for one image."""
    F = torch.nn.functional
    loc, conf, coeffs, proto, priors = map(torch.from_numpy, (loc, conf, coeffs, proto, priors))
    boxes = torch.cat([priors[:, :2] + loc[:, :2] * 0.1 * priors[:, 2:],
                       priors[:, 2:] * torch.exp(loc[:, 2:] * 0.2)], 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    scores = conf[:, 1:].t()  # (C, P)
    keep = scores.max(0).values > 0.05
    scores, boxes, coeffs = scores[:, keep], boxes[keep], coeffs[keep]
    scores, idx = scores.sort(1, descending=True)
    scores, idx = scores[:, :200], idx[:, :200]
    b = boxes[idx]  # (C, k, 4)
    lo = torch.max(b[:, :, None, :2], b[:, None, :, :2])
    hi = torch.min(b[:, :, None, 2:], b[:, None, :, 2:])
    inter = (hi - lo).clamp(min=0).prod(-1)
    area = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    iou = (inter / (area[:, :, None] + area[:, None, :] - inter)).triu(diagonal=1)
    survive = iou.max(1).values <= 0.5
    classes = torch.arange(scores.shape[0])[:, None].expand_as(survive)[survive]
    scores, idx = scores[survive], idx[survive]
    scores, order = scores.sort(0, descending=True)
    scores, classes, idx = scores[:100], classes[order[:100]], idx[order[:100]]
    if score_threshold > 0:
        above = scores > score_threshold
        scores, classes, idx = scores[above], classes[above], idx[above]
    boxes, coeffs = boxes[idx], coeffs[idx]
    masks = torch.sigmoid(proto @ coeffs.t())  # (hp, wp, n)
    hp, wp, _ = masks.shape
    x1, x2 = torch.min(boxes[:, 0], boxes[:, 2]) * wp, torch.max(boxes[:, 0], boxes[:, 2]) * wp
    y1, y2 = torch.min(boxes[:, 1], boxes[:, 3]) * hp, torch.max(boxes[:, 1], boxes[:, 3]) * hp
    cols = torch.arange(wp, dtype=torch.float32)[None, :, None]
    rows = torch.arange(hp, dtype=torch.float32)[:, None, None]
    inside = ((cols >= (x1 - 1).clamp(min=0)) & (cols < (x2 + 1).clamp(max=wp))
              & (rows >= (y1 - 1).clamp(min=0)) & (rows < (y2 + 1).clamp(max=hp)))
    masks = (masks * inside).permute(2, 0, 1)[None]
    masks = F.interpolate(masks, (size[1], size[0]), mode="bilinear", align_corners=False)[0] > 0.5
    scale = torch.tensor([size[0], size[1], size[0], size[1]], dtype=torch.float32)
    return classes.numpy(), scores.numpy(), (boxes * scale).clamp(min=0).numpy(), masks.numpy()


@pytest.mark.parametrize("score_threshold", [0.3, 0.0])
def test_matches_an_independent_torch_reimplementation_of_the_official_code(rng, score_threshold):
    torch = pytest.importorskip("torch", reason="torch (the `train` extra) runs the reference")
    count, classes, size = 1500, 6, (200, 120)
    priors = np.concatenate([rng.uniform(0, 1, (count, 2)), rng.uniform(0.05, 0.5, (count, 2))], 1).astype(np.float32)
    loc = (rng.normal(size=(count, 4)) * 0.7).astype(np.float32)
    logits = rng.normal(size=(count, classes + 1)) * 2.5
    conf = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    coeffs = np.tanh(rng.normal(size=(count, 8))).astype(np.float32)
    proto = np.maximum(rng.normal(size=(24, 24, 8)), 0).astype(np.float32)
    out = {"loc": loc[None], "conf": conf[None], "mask": coeffs[None], "proto": proto[None], "priors": priors}
    ours = YolactDecoder(classes=[str(i) for i in range(classes)], score_threshold=score_threshold)(out, [size])[0]
    ref_classes, ref_scores, ref_boxes, ref_masks = torch_reference(torch, loc, conf, coeffs, proto, priors, size,
                                                                    score_threshold)
    assert 10 < len(ours) <= 100
    np.testing.assert_array_equal(ours.classes, ref_classes)
    np.testing.assert_array_equal(ours.scores, ref_scores)
    np.testing.assert_allclose(ours.boxes, np.minimum(ref_boxes, [*size, *size]), atol=1e-3)
    assert (ours.masks != ref_masks).sum() <= 2  # a value within float rounding of 0.5 may flip
    assert ref_masks.sum() > 1000


def instance_card(**postprocess) -> ModelCard:
    return ModelCard(name="road_yolact", task="instance", file="x.onnx", architecture="YOLACT",
                     classes=["Car", "Pedestrian", "Bicyclist"], palette=[(1, 1, 1)] * 3,
                     input=dict(width=384, height=224, color_order="RGB", mean=(0, 0, 0), std=(1, 1, 1)),
                     output=dict(kind="yolact"), params=0, gflops=0, licence="test",
                     postprocess=postprocess or None)


def test_from_card_reads_classes_and_postprocess():
    card = instance_card(score_threshold=0.5, nms="traditional", nms_iou=0.6, top_k=30, per_class_top=50,
                         mask_threshold=0.4, mask_crop="box", maskness_power=0.5)
    d = YolactDecoder.from_card(card)
    assert d.mask_crop == "box" and YolactDecoder.from_card(instance_card()).mask_crop == "prototype"
    assert d.maskness_power == 0.5 and YolactDecoder.from_card(instance_card()).maskness_power == 0
    assert d.class_names == ("Car", "Pedestrian", "Bicyclist")
    assert (d.score_threshold, d.nms, d.nms_iou, d.top_k, d.per_class_top, d.mask_threshold) == (
        0.5, "traditional", 0.6, 30, 50, 0.4)
    assert d.pixel_scale.tolist() == [384, 224, 384, 224]  # traditional NMS counts input pixels per axis
    assert YolactDecoder.from_card(card, score_threshold=0.05).score_threshold == 0.05
    defaults = YolactDecoder.from_card(instance_card())  # no postprocess section: the official defaults
    assert (defaults.nms, defaults.nms_iou, defaults.top_k, defaults.per_class_top) == ("fast", 0.5, 100, 200)


def test_from_card_refuses_a_semantic_card(tiny_card):
    with pytest.raises(ValueError, match="semantic model"):
        YolactDecoder.from_card(tiny_card.card)


def test_output_problems_are_one_line_errors():
    decoder = YolactDecoder.from_card(instance_card())
    proto, coeffs = flat_proto(1)
    out = outputs([[0.5, 0.5, 0.2, 0.2]], [[0.9, 0, 0]], coeffs, proto)
    with pytest.raises(EdgeSegError, match=r"^model road_yolact: YOLACT output\(s\) proto, priors missing"):
        decoder({k: v for k, v in out.items() if k not in ("proto", "priors")}, [(10, 10)])
    with pytest.raises(EdgeSegError, match="'conf' has 3 scores per prior, the card names 3 classes"):
        decoder(outputs([[0.5, 0.5, 0.2, 0.2]], [[0.9, 0]], coeffs, proto), [(10, 10)])
    with pytest.raises(ValueError, match="1 outputs for 2 frames"):
        decoder(out, [(10, 10), (10, 10)])
    with pytest.raises(ValueError, match="nms must be"):
        YolactDecoder(classes=["a"], nms="soft")
    with pytest.raises(ValueError, match="mask_crop must be"):
        YolactDecoder(classes=["a"], mask_crop="frame")


def test_decoding_never_imports_torch():
    """Inference needs no torch: importing and running the decoder must not load it."""
    code = ("import sys, numpy as np\n"
            "from pipeline.decoders import YolactDecoder\n"
            "out = {'loc': np.zeros((1, 1, 4), np.float32), 'conf': np.array([[[0.1, 0.9]]], np.float32),\n"
            "       'mask': np.ones((1, 1, 1), np.float32), 'proto': np.full((1, 4, 4, 1), 9, np.float32),\n"
            "       'priors': np.array([[0.5, 0.5, 0.5, 0.5]], np.float32)}\n"
            "assert len(YolactDecoder(classes=['a'])(out, [(8, 8)])[0]) == 1\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
