"""The tracker on scripted trajectories with known answers: which detection must carry which id."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.tracking import Tracker, TrackerConfig, TrackState, TrackView

CAR, PERSON = 0, 1


def box(cx: float, cy: float, w: float = 40.0, h: float = 80.0) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def step(tracker: Tracker, boxes: list[list[float]], t: float, scores: list[float] | None = None,
         classes: list[int] | None = None, masks: np.ndarray | None = None) -> list[int]:
    n = len(boxes)
    ids = tracker.update(np.array(boxes, np.float32).reshape(-1, 4),
                         np.array(scores if scores is not None else [0.9] * n, np.float32),
                         np.array(classes if classes is not None else [CAR] * n, np.int32), t, masks=masks)
    assert ids.dtype == np.int64 and ids.shape == (n,)
    return ids.tolist()


def centre(view: TrackView) -> np.ndarray:
    return (view.box[:2] + view.box[2:]) / 2


# --------------------------------------------------------------------------------------------- motion and time

UNEVEN = np.cumsum(np.tile([0.03, 0.12, 0.05, 0.09, 0.2], 8))  # jittery timestamps and a skipped frame or two


@pytest.mark.parametrize("times", [np.arange(40) * 0.1, np.arange(120) / 30, UNEVEN], ids=["10fps", "30fps", "uneven"])
def test_constant_velocity_objects_keep_their_ids(times):
    """Three objects at different velocities (px/s); each keeps one id, and after the filter has learnt the
    velocity, the box predicted for the next frame's pts lands within a few pixels of the object, however
    irregular the time between frames."""
    velocities = [(150.0, 0.0), (-120.0, 30.0), (60.0, -90.0)]
    starts = [(100.0, 200.0), (700.0, 150.0), (400.0, 500.0)]

    def truth(t: float) -> list[list[float]]:
        return [box(x + vx * t, y + vy * t) for (x, y), (vx, vy) in zip(starts, velocities)]

    tracker = Tracker(TrackerConfig())
    first = step(tracker, truth(times[0]), times[0])
    assert first == [1, 2, 3]  # the first update confirms at once
    for i, t in enumerate(times[1:], 1):
        if i >= len(times) // 2:
            predicted = {v.id: centre(v) for v in tracker.predict(t)}
            expected = np.array(truth(t))
            np.testing.assert_allclose([predicted[k] for k in (1, 2, 3)],
                                       (expected[:, :2] + expected[:, 2:]) / 2, atol=3.0)
        assert step(tracker, truth(t), t) == [1, 2, 3]


@pytest.mark.parametrize("back_after_s, same_id", [(0.5, True), (1.2, False)])
def test_repeated_and_backwards_pts(back_after_s, same_id):
    """A repeated pts moves nothing; time going backwards (a looped file) counts as no time, and the lost
    timeout keeps measuring elapsed stream time across the jump."""
    tracker = Tracker(TrackerConfig(lost_timeout_s=1.0))
    for i in range(10):
        assert step(tracker, [box(100, 100)], i * 0.1) == [1]
    assert step(tracker, [box(100, 100)], 0.9) == [1]
    step(tracker, [], 0.0)  # the source looped; the object is hidden from here on
    assert step(tracker, [box(100, 100)], back_after_s) == ([1] if same_id else [-1])
    with pytest.raises(ValueError, match="pts"):
        tracker.predict(float("nan"))


# ------------------------------------------------------------------------------------------------- occlusion

@pytest.mark.parametrize("gap_s, same_id", [(0.8, True), (1.3, False)])
def test_occluded_object_returns_within_lost_timeout(gap_s, same_id):
    """An object moving at 100 px/s disappears for ``gap_s`` seconds (10 fps, no detections at all).
    Within lost_timeout_s it comes back under its id; after it, under a new one."""
    tracker = Tracker(TrackerConfig(lost_timeout_s=1.0))
    step(tracker, [box(600, 300)], 0.0)  # a static second object, so the first one is not in the first update
    t = 0.1
    while t < 1.0:
        ids = step(tracker, [box(600, 300), box(100 + 100 * t, 100)], t)
        t = round(t + 0.1, 3)
    assert ids == [1, 2]
    hidden_until = round(t + gap_s, 3)
    while t < hidden_until - 1e-9:
        assert step(tracker, [box(600, 300)], t) == [1]
        assert [v.id for v in tracker.tracks] == [1]  # the lost one is not shown
        t = round(t + 0.1, 3)
    ids = step(tracker, [box(600, 300), box(100 + 100 * t, 100)], t)
    if same_id:
        assert ids == [1, 2]
    else:
        assert ids == [1, -1]  # a new, tentative track
        assert step(tracker, [box(600, 300), box(110 + 100 * t, 100)], t + 0.1) == [1, 3]


def test_object_that_stops_behind_an_occluder_keeps_its_id():
    """A car at 200 px/s brakes to a stop while hidden for 0.8 s (covering 80 px, not 160): the lost track's
    velocity decays instead of carrying its box a full car length past where the car reappears."""
    tracker = Tracker(TrackerConfig(lost_timeout_s=1.0, lost_velocity_halflife_s=1.0))
    step(tracker, [box(600, 300)], 0.0)
    for i in range(1, 10):
        ids = step(tracker, [box(600, 300), box(100 + 20 * i, 100, 80, 60)], i / 10)
    assert ids == [1, 2]
    for i in range(10, 17):
        step(tracker, [box(600, 300)], i / 10)
    for i in range(17, 20):
        assert step(tracker, [box(600, 300), box(360, 100, 80, 60)], i / 10) == [1, 2]


# -------------------------------------------------------------------------------------------------- crossing

def _half_masks(boxes: list[list[float]], halves: list[str], height: int = 300, width: int = 300) -> np.ndarray:
    """Full-frame masks: the top or the bottom half of each object's true box."""
    masks = np.zeros((len(boxes), height, width), bool)
    for m, (x0, y0, x1, y1), half in zip(masks, np.round(boxes).astype(int), halves):
        mid = (y0 + y1) // 2
        if half == "top":
            m[y0:mid, x0:x1] = True
        else:
            m[mid:y1, x0:x1] = True
    return masks


@pytest.mark.parametrize("mask_weight, keeps_ids", [(0.5, True), (0.0, False)])
def test_masks_keep_ids_where_boxes_mislead(mask_weight, keeps_ids):
    """A (top half of its box visible) walks right, B (bottom half) walks left, in the same row, 100 px/s.
    At the crossing the detector's boxes are pulled onto each other, so that box IoU prefers the swap; the
    masks are where the objects really are. Mask IoU keeps the ids (and without it they swap)."""
    tracker = Tracker(TrackerConfig(mask_weight=mask_weight))
    for i in range(12):
        t = i / 10
        a, b = box(25 + 100 * t, 150, 40, 40), box(175 - 100 * t, 150, 40, 40)
        boxes = [a, b]
        if i == 7:  # A truly at x=95, B at x=105; their boxes come out 11 px off, towards each other's
            boxes = [box(106, 150, 40, 40), box(94, 150, 40, 40)]
        ids = step(tracker, boxes, t, masks=_half_masks([a, b], ["top", "bottom"]))
        assert ids == ([1, 2] if keeps_ids or i != 7 else [2, 1])


# ----------------------------------------------------------------------------------------------- score stages

def test_low_score_detections_extend_tracks_but_never_start_them():
    tracker = Tracker(TrackerConfig(high_score=0.6, low_score=0.1, lost_timeout_s=0.5))
    step(tracker, [box(500, 300)], 0.0)  # not part of the scene below: only so that nothing is born confirmed
    for i in range(1, 4):
        ids = step(tracker, [box(100 + 5 * i, 100)], i * 0.1, scores=[0.9])
    assert ids == [2]
    # a partly occluded stretch: low scores for 1.5 s, three times the lost timeout; and a second object
    # that is only ever detected with low scores
    for i in range(4, 20):
        ids = step(tracker, [box(100 + 5 * i, 100), box(300, 300)], i * 0.1, scores=[0.3, 0.5])
        assert ids == [2, -1]
    assert [v.id for v in tracker.tracks] == [2]
    assert len(tracker) == 1
    # ignored below low_score altogether
    assert step(tracker, [box(200, 100)], 2.0, scores=[0.05]) == [-1]


def test_tentative_tracks_need_consecutive_hits_and_die_at_a_miss():
    tracker = Tracker(TrackerConfig(confirm_hits=2))
    step(tracker, [box(500, 300)], 0.0)
    assert step(tracker, [box(100, 100)], 0.1) == [-1]  # tentative
    step(tracker, [], 0.2)  # missed once: removed
    assert step(tracker, [box(100, 100)], 0.3) == [-1]  # tentative again, not confirmed by the old hit
    assert step(tracker, [box(100, 100)], 0.4) == [2]  # ids are given at confirmation: no gaps from tentatives
    assert step(tracker, [box(100, 100)], 0.5, scores=[0.65]) == [2]


def test_thresholds_include_a_float32_score_equal_to_them():
    """Detectors give float32 scores: 0.7 as float32 is 0.69999999, and must still reach a 0.7 threshold."""
    tracker = Tracker(TrackerConfig(high_score=0.6, new_track_score=0.7))
    assert step(tracker, [box(100, 100)], 0.0, scores=[0.7]) == [1]


# ---------------------------------------------------------------------------------------------------- classes

def test_class_aware_tracks_do_not_mix_classes():
    """A pedestrian passes right in front of a parked car: same place, different classes, two tracks."""
    tracker = Tracker(TrackerConfig(class_agnostic=False))
    for i in range(15):
        ids = step(tracker, [box(200, 150, 60, 60), box(170 + 5 * i, 150, 60, 60)], i * 0.1,
                   classes=[CAR, PERSON])
        assert ids == [1, 2]
    assert {(v.id, v.class_id) for v in tracker.tracks} == {(1, CAR), (2, PERSON)}


@pytest.mark.parametrize("agnostic", [True, False])
def test_class_agnostic_tracks_survive_class_flicker(agnostic):
    """The detector flips between car and van (here 0 and 2) on one object: class-agnostic association follows
    it on every frame and reports the majority class; class-aware association loses it on the van frames."""
    tracker = Tracker(TrackerConfig(class_agnostic=agnostic))
    for i in range(12):
        van = i % 3 == 1
        ids = step(tracker, [box(100 + 8 * i, 100)], i * 0.1, classes=[2 if van else CAR])
        assert ids == ([-1] if van and not agnostic else [1])
        assert [v.class_id for v in tracker.tracks] == ([] if van and not agnostic else [CAR])


# ---------------------------------------------------------------------------------------- detection every Nth

def test_detection_every_third_frame_with_predictions_between():
    """30 fps stream, detector on every third frame. The frames between get predicted boxes that move with
    the objects, and the ids hold."""
    tracker = Tracker(TrackerConfig())
    velocities = np.array([[240.0, 0.0], [-180.0, 60.0]])
    starts = np.array([[100.0, 100.0], [600.0, 300.0]])
    for frame in range(90):
        t = frame / 30
        centres = starts + velocities * t
        if frame % 3 == 0:
            assert step(tracker, [box(*c) for c in centres], t) == [1, 2]
        else:
            views = tracker.predict(t)
            assert [v.id for v in views] == [1, 2] and tracker.tracks == views
            assert all(v.state is TrackState.CONFIRMED for v in views)
            if frame > 30:
                np.testing.assert_allclose([centre(v) for v in views], centres, atol=2.0)


# ------------------------------------------------------------------------------------------- ids and memory

def test_ids_are_never_reused_and_memory_follows_live_objects():
    """Objects come and go for 60 s (each lives 1 s): every object gets its own id, ids only grow (also across
    reset()), and the tracker holds no more tracks than the objects seen within the lost timeout."""
    config = TrackerConfig(lost_timeout_s=0.5)
    tracker = Tracker(config)
    owner: dict[int, int] = {}  # id -> object
    most = 0
    for frame in range(600):
        t = frame / 10
        alive = [k for k in range(frame // 5 - 1, frame // 5 + 1) if k >= 0 and frame - 5 * k < 10]
        boxes = [box(50 + (k % 10) * 70 + 3 * (frame - 5 * k), 100 + (k % 3) * 120) for k in alive]
        masks = np.zeros((len(boxes), 400, 800), bool)
        for m, (x0, y0, x1, y1) in zip(masks, np.round(boxes).astype(int)):
            m[y0:y1, x0:x1] = True
        for k, i in zip(alive, step(tracker, boxes, t, masks=masks)):
            if i > 0:
                assert owner.setdefault(i, k) == k
        most = max(most, len(tracker))
    assert len(owner) == 120
    assert sorted(owner) == list(range(1, 121))
    assert most <= 2 + 2 * 2  # live objects plus those lost in the last 0.5 s
    tracker.reset()
    assert len(tracker) == 0 and tracker.tracks == ()
    assert step(tracker, [box(100, 100)], 100.0) == [121]


# ------------------------------------------------------------------------------------------ moving camera

@pytest.mark.parametrize("prior", [True, False])
def test_new_tracks_inherit_the_scene_motion(prior):
    """A turning camera: everything sweeps right at 400 px/s (10 fps). Large objects are followed either way;
    a small one entering the view moves its own width between frames, so a new track at rest never sees it
    again, while one starting at the scene's velocity is confirmed at its second detection."""
    tracker = Tracker(TrackerConfig(scene_velocity_prior=prior))
    for i in range(12):
        t = i / 10
        boxes = [box(100 + 400 * t, 200, 150, 150), box(50 + 400 * t, 450, 150, 150)]
        if i >= 8:
            boxes.append(box(30 + 400 * (t - 0.8), 300, 30, 30))
        ids = step(tracker, boxes, t)
        assert ids[:2] == [1, 2]
        if i == 9:
            assert (ids[2] == 3) is prior


# ------------------------------------------------------------------------------------------------------ views

def test_views_carry_the_mask_crop_and_its_box():
    tracker = Tracker(TrackerConfig())
    masks = np.zeros((1, 100, 200), bool)
    masks[0, 20:60, 30:50] = True
    masks[0, 20:30, 30:35] = False
    step(tracker, [[30.0, 20.0, 50.0, 60.0]], 0.0, masks=masks)
    (view,) = tracker.tracks
    assert view.mask_box == (30, 20, 50, 60)
    np.testing.assert_array_equal(view.mask, masks[0, 20:60, 30:50])
    assert view.first_seen == view.last_seen == 0.0 and view.score == pytest.approx(0.9)
    (moved,) = tracker.predict(0.5)
    assert moved.last_seen == 0.0 and moved.mask_box == (30, 20, 50, 60)
    # no masks given: none kept
    tracker = Tracker(TrackerConfig())
    step(tracker, [box(100, 100)], 0.0)
    assert tracker.tracks[0].mask is None and tracker.tracks[0].mask_box is None


def test_config_rejects_inconsistent_thresholds_and_unknown_keys():
    with pytest.raises(ValidationError, match="low_score"):
        TrackerConfig(low_score=0.7, high_score=0.5)
    with pytest.raises(ValidationError, match="new_track_score"):
        TrackerConfig(high_score=0.6, new_track_score=0.5)
    with pytest.raises(ValidationError):
        TrackerConfig(max_age=30)
    with pytest.raises(ValidationError):
        TrackerConfig(lost_timeout_s=float("inf"))
