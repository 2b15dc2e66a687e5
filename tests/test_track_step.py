"""The pipeline's tracking stage on the synthetic world's exact objects: ids that stay on their objects, and
predicted instances on the frames a detector running every Nth frame skips."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipeline.stream.track_step import TrackStep, predicted_instances
from pipeline.synth import SynthWorld
from pipeline.tracking import TrackerConfig
from pipeline.types import FrameResult


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def _run(every: int, frames: int = 45, size: tuple[int, int] = (320, 180)):
    """Feed the world's ground truth (ids removed) to a TrackStep, detecting on every ``every``-th frame.
    Yields (frame index, ground-truth Instances, the stage's Instances)."""
    world = SynthWorld(seed=3, size=size)
    classes = world.render(0).to_instances().class_names
    step = TrackStep(TrackerConfig(), classes)
    for k in range(frames):
        truth = world.render(k).to_instances()
        result = FrameResult(world.render(k).frame)
        if k % every == 0:
            result.instances = replace(truth, track_ids=None)
        step(result)
        yield k, truth, result.instances


MIN_AREA = 400  # visible pixels: smaller objects of this crowded scene are specks a detector would miss


def test_ids_stay_on_their_objects():
    ours_of: dict[int, set[int]] = {}
    for _, truth, out in _run(every=1, frames=60, size=(640, 360)):
        assert np.array_equal(out.boxes, truth.boxes)  # detections pass through, only ids are added
        areas = truth.masks.sum(axis=(1, 2))
        for gt, ours, area in zip(truth.track_ids.tolist(), out.track_ids.tolist(), areas.tolist()):
            if ours >= 0 and area >= MIN_AREA:
                ours_of.setdefault(gt, set()).add(ours)
    assert len(ours_of) >= 10
    assert all(len(ids) == 1 for ids in ours_of.values()), ours_of  # no object changed id
    all_ids = [next(iter(ids)) for ids in ours_of.values()]
    assert len(set(all_ids)) == len(all_ids)  # no two objects share an id


def test_skipped_frames_get_predicted_instances_with_the_same_ids():
    ids_at_detection: dict[int, int] = {}  # our id -> ground-truth id, from detected frames
    checked = 0
    for k, truth, out in _run(every=3):
        if k % 3 == 0:
            for gt, ours in zip(truth.track_ids.tolist(), out.track_ids.tolist()):
                if ours >= 0:
                    ids_at_detection[ours] = gt
            continue
        assert out is not None and out.masks.shape == (len(out), 180, 320)
        for ours, box, mask in zip(out.track_ids.tolist(), out.boxes, out.masks):
            gt = ids_at_detection[ours]  # a predicted object is one the detector saw
            match = np.flatnonzero(truth.track_ids == gt)
            if len(match) == 0 or k < 7:
                continue  # it left the frame between detections; or its velocity is not known yet
            true_box = truth.boxes[match[0]]
            if truth.masks[match[0]].sum() < MIN_AREA or true_box[0] <= 0 or true_box[2] >= 320:
                continue  # specks; and boxes cut by the frame edge, whose visible part does not move rigidly
            assert _box_iou(box, true_box) > 0.6, (k, ours, box, true_box)
            assert mask.any()
            checked += 1
    assert checked >= 10


def test_predicted_masks_move_with_their_boxes():
    class View:  # the fields of TrackView that the conversion reads
        id, class_id, score = 7, 0, 0.9
        box = np.array([20, 30, 30, 40], np.float32)  # the crop was taken at (10, 10): moved by (+10, +20)
        mask = np.ones((10, 10), bool)
        mask_box = (10, 10, 20, 20)

    out = predicted_instances([View()], 60, 80, ("Car",))
    assert out.track_ids.tolist() == [7] and out.class_names == ("Car",)
    ys, xs = np.nonzero(out.masks[0])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (20, 29, 30, 39)
    View.box = np.array([75, 55, 85, 65], np.float32)  # half outside the frame: clipped, not an error
    clipped = predicted_instances([View()], 60, 80, ("Car",)).masks[0]
    assert clipped.sum() == 5 * 5


@pytest.mark.parametrize("every", [1, 2])
def test_no_detections_at_all_gives_empty_instances(every):
    world = SynthWorld(seed=3, size=(160, 90))
    step = TrackStep(TrackerConfig(), ("Car",))
    result = FrameResult(world.render(0).frame)
    step(result)
    assert len(result.instances) == 0 and result.instances.masks.shape == (0, 90, 160)
