"""Box IoU, mask crops, mask IoU on box overlaps, and the gated assignment."""

from __future__ import annotations

import numpy as np

from pipeline.tracking.matching import MaskCrop, assign, blend_mask_iou, box_iou, crop_masks


def test_box_iou_known_values():
    a = np.array([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    b = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)


def test_crop_masks_cuts_to_whole_pixel_boxes_inside_the_frame():
    masks = np.zeros((3, 20, 30), bool)
    masks[0, 5:10, 4:8] = True
    masks[1, 0:3, 25:30] = True
    boxes = np.array([[4.2, 5.0, 7.5, 9.9],  # widened to whole pixels: 4..8 x 5..10
                      [24.5, -3.0, 35.0, 2.2],  # clipped to the frame
                      [10.0, 10.0, 12.0, 12.0]])  # no mask pixels in its box
    crops = crop_masks(masks, boxes, np.arange(3))
    assert crops[0].box == (4, 5, 8, 10) and crops[0].area == 20 and crops[0].mask.all()
    assert crops[1].box == (24, 0, 30, 3) and crops[1].area == 15
    assert crops[2] is None
    masks[0] = False  # the caller reuses its buffer: the crop is a copy and stays
    assert crops[0].mask.all() and not crops[0].mask.flags.writeable


def _crop(mask: np.ndarray, x0: int, y0: int) -> MaskCrop:
    return MaskCrop(mask, (x0, y0, x0 + mask.shape[1], y0 + mask.shape[0]), int(mask.sum()))


def test_mask_iou_separates_overlapping_boxes():
    """Two detections with the same box: the one whose mask matches the track's wins on blended similarity."""
    top = np.zeros((20, 20), bool)
    top[:10] = True
    bottom = ~top
    track_crops = [_crop(top, 100, 100)]
    det_crops = [_crop(top, 100, 100), _crop(bottom, 100, 100)]
    sim = np.ones((1, 2))  # identical boxes
    blend_mask_iou(sim, track_crops, np.array([[110.0, 110.0]]), det_crops, mask_weight=0.5, min_sim=0.2)
    np.testing.assert_allclose(sim, [[1.0, 0.5]])


def test_track_mask_moves_with_its_predicted_box():
    """The track's mask was cropped at x=100 and its box is predicted 30 px to the right. Two detections with
    the same mask, one there and one where the track was: after the shift the mask matches the first."""
    shape = np.zeros((20, 20), bool)
    shape[5:15, 2:8] = True
    track_crops = [_crop(shape, 100, 100)]
    det_crops = [_crop(shape, 130, 100), _crop(shape, 100, 100)]
    moved = np.full((1, 2), 0.2)
    blend_mask_iou(moved, track_crops, np.array([[140.0, 110.0]]), det_crops, mask_weight=1.0, min_sim=0.1)
    np.testing.assert_array_equal(moved, [[1.0, 0.0]])
    stayed = np.full((1, 2), 0.2)
    blend_mask_iou(stayed, track_crops, np.array([[110.0, 110.0]]), det_crops, mask_weight=1.0, min_sim=0.1)
    np.testing.assert_array_equal(stayed, [[0.0, 1.0]])


def test_uncontested_pairs_keep_box_iou():
    """Masks arbitrate between candidates; a track and a detection that are each other's only candidate
    are not read (their masks here disagree completely)."""
    top = np.zeros((20, 20), bool)
    top[:10] = True
    sim = np.array([[0.9, 0.0], [0.0, 0.7]])
    blend_mask_iou(sim, [_crop(top, 0, 0), _crop(top, 50, 0)], np.array([[10.0, 10.0], [60.0, 10.0]]),
                   [_crop(~top, 0, 0), _crop(~top, 50, 0)], mask_weight=0.5, min_sim=0.2)
    np.testing.assert_array_equal(sim, [[0.9, 0.0], [0.0, 0.7]])


def test_mask_iou_only_where_both_sides_have_masks_and_boxes_overlap():
    shape = np.ones((10, 10), bool)
    sim = np.array([[0.6, 0.0, 0.6]])
    blend_mask_iou(sim, [_crop(shape, 0, 0)], np.array([[5.0, 5.0]]),
                   [None, _crop(shape, 0, 0), _crop(shape, 0, 0)], mask_weight=0.5, min_sim=0.2)
    np.testing.assert_allclose(sim, [[0.6, 0.0, 0.8]])  # no mask: box IoU kept; no box overlap: stays 0


def test_assign_maximises_margin_not_number_of_pairs():
    """Track A fits detection 1 well; pairing A-2 and B-1 instead would match more pairs but worse ones
    (the false-positive track B stealing A's detection)."""
    sim = np.array([[0.9, 0.3],
                    [0.15, 0.0]])
    rows, cols = assign(sim, 0.1)
    assert rows.tolist() == [0] and cols.tolist() == [0]


def test_assign_gates_and_pairs_each_once():
    sim = np.array([[0.8, 0.7, 0.0],
                    [0.75, 0.1, 0.0],
                    [0.0, 0.0, 0.19]])
    rows, cols = assign(sim, 0.2)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0)]
    for empty in (np.zeros((0, 3)), np.zeros((2, 0)), np.full((2, 2), 0.05)):
        rows, cols = assign(empty, 0.2)
        assert len(rows) == len(cols) == 0
