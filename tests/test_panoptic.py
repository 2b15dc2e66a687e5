"""Panoptic fusion, PQ and the panoptic outputs: hand-made maps whose every pixel is worked out in the test,
and the synthetic world's exact ground truth (fusing its own semantic map and instances must give PQ 1)."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.errors import EdgeSegError
from pipeline.eval.panoptic import PanopticAccumulator, synth_ground_truth
from pipeline.labels import CAMVID, CITYSCAPES
from pipeline.panoptic import CAMVID_THINGS, PanopticConfig, PanopticFuser, instance_numbers
from pipeline.sinks import JsonlSink, MaskSink
from pipeline.sinks.jsonl import SCHEMA_KEYS
from pipeline.synth import SynthWorld
from pipeline.types import Frame, FrameResult, Instances, PanopticMap, PanopticSegment, SemanticMap

PALETTE = np.asarray(CAMVID.palette, np.uint8)
SKY, ROAD, FENCE, CAR, PED = (CAMVID.index(n) for n in ("Sky", "Road", "Fence", "Car", "Pedestrian"))
# panoptic ids: (class index + 1) * 1000 for stuff, + instance number for things
SKY_ID, ROAD_ID = (SKY + 1) * 1000, (ROAD + 1) * 1000
NO_FRAGMENT_REMOVAL = PanopticConfig(min_stuff_area=0)


def semantic(labels: np.ndarray, classes: tuple[str, ...] = CAMVID.classes) -> SemanticMap:
    return SemanticMap(labels.astype(np.uint8), classes, np.zeros((len(classes), 3), np.uint8))


def instances(masks: list[np.ndarray], classes: list[int], scores: list[float],
              names: tuple[str, ...] = CAMVID.classes, tracks: list[int] | None = None) -> Instances:
    return Instances(np.array(classes, np.int32), np.array(scores, np.float32), np.zeros((len(masks), 4), np.float32),
                     np.stack(masks), names, None if tracks is None else np.array(tracks, np.int64))


def box_mask(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[rows, cols] = True
    return m


def assert_consistent(p: PanopticMap) -> None:
    """Every pixel is void or exactly one declared segment; areas are pixel counts; ids ascend."""
    ids = [s.id for s in p.segments]
    assert ids == sorted(set(ids))
    values, counts = np.unique(p.ids, return_counts=True)
    declared = dict(zip(values.tolist(), counts.tolist()))
    declared.pop(0, None)
    assert declared == {s.id: s.area for s in p.segments}


# --- fusion rules on hand-made maps ---------------------------------------------------------------------

def test_confident_instances_win_over_stuff_and_the_higher_score_wins_overlaps():
    """8x10: Sky rows 0-2, Road rows 3-7. Car A (0.9) rows 2-5 x cols 1-4; Pedestrian B (0.6) rows 4-7 x
    cols 3-6 overlaps A on 4 pixels, keeps 12/16 >= 0.5; Car C (0.3) is under the 0.5 score threshold and
    leaves its pixels to Sky. Untracked instance numbers are list positions + 1: A 9001, B 10002."""
    shape = (8, 10)
    labels = np.full(shape, ROAD)
    labels[:3] = SKY
    a, b, c = box_mask(shape, slice(2, 6), slice(1, 5)), box_mask(shape, slice(4, 8), slice(3, 7)), \
        box_mask(shape, slice(0, 2), slice(7, 10))
    p = PanopticFuser(NO_FRAGMENT_REMOVAL)(semantic(labels), instances([a, b, c], [CAR, PED, CAR], [0.9, 0.6, 0.3]))
    expected = np.full(shape, ROAD_ID)
    expected[:3] = SKY_ID
    expected[4:8, 3:7] = (PED + 1) * 1000 + 2
    expected[2:6, 1:5] = (CAR + 1) * 1000 + 1  # A over B where they overlap
    np.testing.assert_array_equal(p.ids, expected)
    assert [(s.id, CAMVID.classes[s.category], s.isthing, s.area) for s in p.segments] == [
        (SKY_ID, "Sky", False, 30 - 4), (ROAD_ID, "Road", False, 50 - 12 - 12), (9001, "Car", True, 16),
        (10002, "Pedestrian", True, 12)]
    assert_consistent(p)
    # listed the other way round: the same picture (only the list positions in the ids change)
    q = PanopticFuser(NO_FRAGMENT_REMOVAL)(semantic(labels), instances([b, a], [PED, CAR], [0.6, 0.9]))
    np.testing.assert_array_equal(q.ids == 9002, p.ids == 9001)
    np.testing.assert_array_equal(q.ids == 10001, p.ids == 10002)


def test_a_mostly_hidden_instance_is_dropped_and_occludes_nothing():
    """6x10 Road. Car A (0.9) rows 0-3 x cols 0-3. Car B (0.8) rows 0-3 x cols 2-4: 8 of its 12 pixels are
    A's, 4/12 < 0.5 visible -> dropped. Pedestrian C (0.7) rows 2-5 x cols 4-6 takes all its 12 pixels,
    including the two it shares with B (painting all three in ascending score would have given them to
    B). B's free pixels rows 0-1 col 4 fall back to Road. Car D (0.6) rows 4-5 x cols 0-3 shares rows 4-5
    with nothing: kept whole. Car E (0.55) rows 3-4 x cols 0-3: 4 of 8 visible, exactly 0.5 -> kept."""
    shape = (6, 10)
    masks = [box_mask(shape, slice(0, 4), slice(0, 4)), box_mask(shape, slice(0, 4), slice(2, 5)),
             box_mask(shape, slice(2, 6), slice(4, 7)), box_mask(shape, slice(5, 6), slice(0, 4)),
             box_mask(shape, slice(3, 5), slice(0, 4))]
    p = PanopticFuser(NO_FRAGMENT_REMOVAL)(semantic(np.full(shape, ROAD)), instances(
        masks, [CAR, CAR, PED, CAR, CAR], [0.9, 0.8, 0.7, 0.6, 0.55]))
    expected = np.full(shape, ROAD_ID)
    expected[0:4, 0:4] = 9001
    expected[2:6, 4:7] = 10003
    expected[5, 0:4] = 9004
    expected[4, 0:4] = 9005  # E's visible half (row 3 is A's)
    np.testing.assert_array_equal(p.ids, expected)
    assert [s.id for s in p.segments if s.isthing] == [9001, 9004, 9005, 10003]
    assert_consistent(p)


def test_void_rules_and_small_stuff_fragments():
    """12x12 Road, min_stuff_area 7:
    - Car semantic pixels (rows 0-1, cols 0-2) with no instance -> void (no identity-less "crowd" thing);
    - the semantic net's void (255) and CamVid's void index (11) -> void;
    - a 2x3 Sky island (6 px < 7) -> void;
    - two 2x2 Sky blocks touching at a corner: one 8-connected region of 8 px -> kept (4-connected they
      would be two regions of 4, both removed);
    - 3 Fence pixels, the whole class under the minimum -> void."""
    labels = np.full((12, 12), ROAD)
    labels[0:2, 0:3] = CAR
    labels[11, 11] = 255
    labels[11, 10] = 11
    labels[4:6, 4:7] = SKY
    labels[8:10, 0:2] = SKY
    labels[10:12, 2:4] = SKY
    labels[0, 9:12] = FENCE
    p = PanopticFuser(PanopticConfig(min_stuff_area=7))(semantic(labels))
    expected = np.full((12, 12), ROAD_ID)
    expected[0:2, 0:3] = 0
    expected[11, 10:12] = 0
    expected[4:6, 4:7] = 0
    expected[8:10, 0:2] = SKY_ID
    expected[10:12, 2:4] = SKY_ID
    expected[0, 9:12] = 0
    np.testing.assert_array_equal(p.ids, expected)
    assert [(s.id, s.area) for s in p.segments] == [(SKY_ID, 8), (ROAD_ID, 144 - 6 - 2 - 6 - 8 - 3)]
    assert_consistent(p)


def test_stuff_left_in_slivers_between_objects_is_removed():
    """20x20: Sky rows 0-9, Road rows 10-19. Car A rows 8-15 x cols 0-8, car B rows 8-15 x cols 11-19 and a
    pedestrian rows 14-15 x cols 9-10 enclose the Road at rows 10-13 x cols 9-10 (8 px; Sky above it).
    Fragments are found after the things are placed: with min_stuff_area 10 that sliver is void, while
    the Sky pixels between the cars (rows 8-9) still join the Sky above and stay."""
    shape = (20, 20)
    labels = np.full(shape, ROAD)
    labels[:10] = SKY
    things = instances([box_mask(shape, slice(8, 16), slice(0, 9)), box_mask(shape, slice(8, 16), slice(11, 20)),
                        box_mask(shape, slice(14, 16), slice(9, 11))], [CAR, CAR, PED], [0.9, 0.8, 0.7])
    p = PanopticFuser(PanopticConfig(min_stuff_area=10))(semantic(labels), things)
    assert (p.ids[10:14, 9:11] == 0).all()
    assert (p.ids[16:] == ROAD_ID).all() and (p.ids[:8] == SKY_ID).all() and (p.ids[8:10, 9:11] == SKY_ID).all()
    assert [(s.id, s.area) for s in p.segments] == [(SKY_ID, 164), (ROAD_ID, 80), (9001, 72), (9002, 72),
                                                    (10003, 4)]
    assert_consistent(p)


def test_track_ids_number_things_and_clashes_take_free_numbers():
    """Tracks 1005 (0.9), 5 (0.8) and 2000 (0.7), all cars: 1005 keeps 5, track 5 clashes and takes the
    smallest free number 1, track 2000 (number 0 is not an instance) takes 2. A pedestrian with track 5
    keeps 5: numbers are per class. Segments keep the true track ids."""
    shape = (4, 16)
    masks = [box_mask(shape, slice(0, 4), slice(4 * k, 4 * k + 4)) for k in range(4)]
    p = PanopticFuser(NO_FRAGMENT_REMOVAL)(semantic(np.full(shape, ROAD)), instances(
        masks, [CAR, CAR, CAR, PED], [0.8, 0.9, 0.7, 0.6], tracks=[5, 1005, 2000, 5]))
    assert [p.ids[0, 4 * k] for k in range(4)] == [9001, 9005, 9002, 10005]
    assert {s.id: s.track_id for s in p.segments if s.isthing} == {9001: 5, 9005: 1005, 9002: 2000, 10005: 5}
    np.testing.assert_array_equal(instance_numbers(np.zeros(3, int), np.array([999, 1999, 1000])), [999, 1, 2])
    with pytest.raises(ValueError, match="more than 999 objects of class 8"):
        instance_numbers(np.full(1000, 8), np.arange(1000))


def test_declared_class_mapping_between_label_sets():
    """A Cityscapes semantic net and a COCO-named instance model fused into CamVid classes: road -> Road,
    sky -> Sky; truck -> Car, person -> Pedestrian; the dog is not declared and is ignored (its pixels keep
    their stuff), and the semantic net's own "car" pixels are not stuff -> void."""
    labels = np.full((6, 8), CITYSCAPES.classes.index("road"))
    labels[:2] = CITYSCAPES.classes.index("sky")
    labels[5, 6:] = CITYSCAPES.classes.index("car")
    names = ("person", "car", "truck", "dog")
    config = PanopticConfig(stuff={"road": "Road", "sky": "Sky"},
                            things={"car": "Car", "truck": "Car", "person": "Pedestrian"}, min_stuff_area=0)
    truck, dog = box_mask((6, 8), slice(2, 4), slice(0, 3)), box_mask((6, 8), slice(2, 4), slice(4, 6))
    p = PanopticFuser(config)(semantic(labels, CITYSCAPES.classes),
                              instances([dog, truck], [3, 2], [0.99, 0.8], names=names))
    expected = np.full((6, 8), ROAD_ID)
    expected[:2] = SKY_ID
    expected[5, 6:] = 0
    expected[2:4, 0:3] = (CAR + 1) * 1000 + 2  # second in the list
    np.testing.assert_array_equal(p.ids, expected)
    assert p.classes == CAMVID.classes


def test_mismatched_models_and_bad_configs_are_one_line_errors():
    fuser = PanopticFuser()
    with pytest.raises(EdgeSegError, match=r"^panoptic\.stuff: 'Sky' is not a class of the semantic model "
                                           r"\(its classes: road, sidewalk, .*bicycle\)$"):
        fuser(semantic(np.zeros((4, 4)), CITYSCAPES.classes))
    coco = instances([np.ones((4, 4), bool)], [0], [0.9], names=("person", "car"))
    with pytest.raises(EdgeSegError, match=r"^panoptic\.things: 'Car' is not a class of the instance model "
                                           r"\(its classes: person, car\)$"):
        fuser(semantic(np.zeros((4, 4))), coco)
    with pytest.raises(ValueError, match=r"instance masks \(5, 4\) and semantic map \(4, 4\) differ"):
        fuser(semantic(np.zeros((4, 4))), instances([np.ones((5, 4), bool)], [CAR], [0.9]))
    for bad, message in [({"stuff": {"road": "Tarmac"}}, "stuff: 'road' maps to 'Tarmac', not a class of camvid11"),
                         ({"stuff": ["Car"]}, r"classes \['Car'\] are declared both stuff and things"),
                         ({"label_set": "ade20k"}, "label_set 'ade20k' is unknown"),
                         ({"score_treshold": 0.5}, "Extra inputs are not permitted"),
                         ({"min_visible": 1.5}, "less than or equal to 1")]:
        with pytest.raises(ValidationError, match=message):
            PanopticConfig(**bad)
    assert PanopticConfig(stuff=["Road", "Sky"]).stuff == {"Road": "Road", "Sky": "Sky"}


# --- PQ on hand-worked maps -----------------------------------------------------------------------------

CLASSES = ("road", "car", "sky")  # category 0 road (stuff), 1 car (thing), 2 sky (stuff)


def pmap(ids: list[list[int]], categories: dict[int, int]) -> PanopticMap:
    """A panoptic map from a small id grid; ``categories``: segment id -> category index."""
    grid = np.array(ids, np.int32)
    segments = tuple(PanopticSegment(i, c, c == 1, int((grid == i).sum())) for i, c in sorted(categories.items()))
    return PanopticMap(grid, segments, CLASSES, np.zeros((3, 3), np.uint8))


def test_pq_hand_case_with_a_match_at_exactly_half():
    """GT                Pred            R road (1000), C/D cars (2001, 2002); pred ids are arbitrary
        R R C C         R R C C
        R R C C         R R C C
        R R D D         R R C D
        R R D D         R R R D
    road: gt 8, pred 9, inter 8 -> IoU 8/9, TP.                 PQ_road = 8/9, SQ 8/9, RQ 1
    car C: gt 4, pred C 5, inter 4 -> IoU 0.8, TP.
    car D: gt 4, pred D 2, inter 2 -> IoU 2/4 = 0.5, NOT > 0.5: FN (gt D) and FP (pred D).
    car: TP 1, FP 1, FN 1, IoU sum 0.8 -> PQ = 0.8 / (1 + 0.5 + 0.5) = 0.4, SQ 0.8, RQ 0.5.
    sky never occurs: NaN, left out. All: (8/9 + 0.4) / 2; things 0.4; stuff 8/9."""
    gt = pmap([[1000, 1000, 2001, 2001], [1000, 1000, 2001, 2001], [1000, 1000, 2002, 2002],
               [1000, 1000, 2002, 2002]], {1000: 0, 2001: 1, 2002: 1})
    pred = pmap([[1000, 1000, 2007, 2007], [1000, 1000, 2007, 2007], [1000, 1000, 2007, 2003],
                 [1000, 1000, 1000, 2003]], {1000: 0, 2007: 1, 2003: 1})
    acc = PanopticAccumulator(CLASSES, things=["car"])
    acc.update(gt, pred)
    s = acc.scores()
    np.testing.assert_allclose(s.pq[:2], [8 / 9, 0.4])
    np.testing.assert_allclose(s.sq[:2], [8 / 9, 0.8])
    np.testing.assert_allclose(s.rq[:2], [1.0, 0.5])
    assert np.isnan(s.pq[2]) and np.isnan(s.sq[2]) and np.isnan(s.rq[2])
    assert (s.tp.tolist(), s.fp.tolist(), s.fn.tolist()) == ([1, 1, 0], [0, 1, 0], [0, 1, 0])
    assert s.all.pq == pytest.approx((8 / 9 + 0.4) / 2) and s.all.classes == 2
    assert (s.things.pq, s.stuff.pq) == (pytest.approx(0.4), pytest.approx(8 / 9))
    assert s.all.sq == pytest.approx((8 / 9 + 0.8) / 2) and s.all.rq == pytest.approx(0.75)


def test_pq_hand_case_with_void():
    """GT (V void 0, S sky 3000, R road 1000, C car 2001)     Pred (0 = void)
        V V V V S S                                       X X X S S S     X car 2002: 3 px, all in void
        V V V V S S                                       Y Y 0 S S S     Y car 2003: 4 px, 2 in void
        R R R R S S                                       Y Y R R S S
        R R R R S S                                       R R R R S S
        R R R R C C                                       R R R R C C
        R R R R C C                                       R R R R C C
    sky: gt 8, pred 10 of which 2 on gt void, inter 8: union = 8 + 10 - 8 - 2 = 8 -> IoU 1 (the void
         pixels a prediction covers are not held against it; counting them would give 0.8).
    road: gt 16, pred 14, inter 14 -> IoU 14/16 = 0.875.
    car: gt C 4 = pred C -> IoU 1, TP. X: 3/3 of it on void > 0.5 -> ignored, not FP. Y: void 2/4 = 0.5,
         not > 0.5 -> FP (it also overlaps gt road, another class: no match).
    PQ: sky 1, road 0.875, car 1 / (1 + 0.5) = 2/3 (SQ 1, RQ 2/3). Stuff (1 + 0.875) / 2 = 0.9375."""
    v, s_, r, c = 0, 3000, 1000, 2001
    gt = pmap([[v, v, v, v, s_, s_], [v, v, v, v, s_, s_], [r, r, r, r, s_, s_], [r, r, r, r, s_, s_],
               [r, r, r, r, c, c], [r, r, r, r, c, c]], {1000: 0, 2001: 1, 3000: 2})
    x, y = 2002, 2003
    pred = pmap([[x, x, x, s_, s_, s_], [y, y, 0, s_, s_, s_], [y, y, r, r, s_, s_], [r, r, r, r, s_, s_],
                 [r, r, r, r, c, c], [r, r, r, r, c, c]], {1000: 0, 2001: 1, 2002: 1, 2003: 1, 3000: 2})
    acc = PanopticAccumulator(CLASSES, things=["car"])
    acc.update(gt, pred)
    s = acc.scores()
    np.testing.assert_allclose(s.pq, [0.875, 2 / 3, 1.0])
    np.testing.assert_allclose(s.sq, [0.875, 1.0, 1.0])
    np.testing.assert_allclose(s.rq, [1.0, 2 / 3, 1.0])
    assert s.fp.tolist() == [0, 1, 0] and s.fn.tolist() == [0, 0, 0]
    assert s.stuff.pq == pytest.approx(0.9375) and s.things.pq == pytest.approx(2 / 3)
    assert s.all.pq == pytest.approx((0.875 + 2 / 3 + 1) / 3)


def test_pq_sums_counts_over_images_and_rejects_undeclared_ids():
    """Two 2x2 images, gt road on top, a car below. Image 1 predicted perfectly. Image 2: all four pixels
    predicted road: road IoU 2/4 = 0.5, not a match -> road FP 1 and FN 1; the car is missed -> FN 1.
    Summed: road TP 1, FP 1, FN 1 -> PQ 1 / 2 = 0.5; car TP 1, FN 1 -> PQ 1 / 1.5 = 2/3 (a mean of the
    per-image PQs would say 0.5)."""
    gt = pmap([[1000, 1000], [2001, 2001]], {1000: 0, 2001: 1})
    acc = PanopticAccumulator(CLASSES, things=["car"])
    acc.update(gt, gt)
    acc.update(gt, pmap([[1000, 1000], [1000, 1000]], {1000: 0}))
    s = acc.scores()
    np.testing.assert_allclose(s.pq[:2], [0.5, 2 / 3])
    assert acc.images == 2 and (s.tp.tolist(), s.fp.tolist(), s.fn.tolist()) == ([1, 1, 0], [1, 0, 0], [1, 1, 0])
    stray = PanopticMap(np.array([[1000, 7]], np.int32), (PanopticSegment(1000, 0, False, 1),), CLASSES,
                        np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="pixel id 7 belongs to no segment"):
        acc.update(pmap([[1000, 1000]], {1000: 0}), stray)


# --- the synthetic world as panoptic ground truth -------------------------------------------------------

@pytest.fixture(scope="module")
def synth_frames():
    world = SynthWorld(7, size=(640, 360))
    return [world.render(i) for i in range(0, 120, 30)]


def fuse_truth(f, config: PanopticConfig = NO_FRAGMENT_REMOVAL, inst: Instances | None = None) -> PanopticMap:
    return PanopticFuser(config)(SemanticMap(f.semantic, CAMVID.classes, PALETTE),
                                 f.to_instances() if inst is None else inst)


def pq_of(pairs) -> PanopticAccumulator:
    acc = PanopticAccumulator(CAMVID.classes, things=CAMVID_THINGS)
    for gt, pred in pairs:
        acc.update(gt, pred)
    return acc


def test_fusing_the_synthetic_ground_truth_gives_pq_one(synth_frames):
    """The ground-truth panoptic map is built from the label and instance-id maps (np.unique over ids); the
    fusion works from the semantic map and the per-object masks. They agree pixel for pixel, segment for
    segment, and PQ = SQ = RQ = 1 for all, things and stuff. With the default 16-px fragment removal the
    things are untouched (PQ 1) and stuff loses only its smallest genuine fragments (thin poles, slivers)."""
    pairs = [(synth_ground_truth(f), fuse_truth(f)) for f in synth_frames]
    for gt, pred in pairs:
        np.testing.assert_array_equal(pred.ids, gt.ids)
        assert pred.segments == gt.segments
        assert_consistent(gt)
        assert not (gt.ids == 0).any()  # the synthetic world labels every pixel
    s = pq_of(pairs).scores()
    assert (s.all.pq, s.all.sq, s.all.rq, s.things.pq, s.stuff.pq) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert s.things.classes == 3 and s.stuff.classes == 8
    default = pq_of((gt, fuse_truth(f, PanopticConfig())) for (gt, _), f in zip(pairs, synth_frames)).scores()
    assert default.things.pq == 1.0
    assert default.stuff.rq == 1.0 and 0.95 < default.stuff.pq < 1.0  # measured 0.974


def test_degraded_instances_lower_pq_on_things_only(synth_frames):
    """One frame. Dropping a car: Car gets TP n-1, FN 1 -> PQ (n-1) / (n-1/2); stuff is untouched (the
    car's pixels become void, which costs stuff nothing) -> stuff PQ stays exactly 1. Shifting a car
    clear of itself and of every other object: TP n-1, FP 1, FN 1 -> PQ (n-1) / n; stuff is still all
    matched (RQ 1), and loses only the pixels the moved car now covers: IoU (A - lost) / A per class."""
    f = synth_frames[1]
    truth = f.to_instances()
    gt = synth_ground_truth(f)
    cars = np.flatnonzero(truth.classes == CAR)
    n = len(cars)
    assert n >= 4
    present_things = {CAMVID.classes[s.category] for s in gt.segments if s.isthing}
    others = [1.0] * (len(present_things) - 1)

    dropped = np.ones(len(truth), bool)
    dropped[cars[0]] = False
    inst = Instances(truth.classes[dropped], truth.scores[dropped], truth.boxes[dropped], truth.masks[dropped],
                     truth.class_names, truth.track_ids[dropped])
    s = pq_of([(gt, fuse_truth(f, inst=inst))]).scores()
    assert s.pq[CAR] == pytest.approx((n - 1) / (n - 0.5))
    assert s.things.pq == pytest.approx(np.mean([(n - 1) / (n - 0.5), *others]))
    assert (s.stuff.pq, s.stuff.rq) == (1.0, 1.0)

    occupied = truth.masks.any(axis=0)
    width = truth.masks.shape[2]
    for k in cars[np.argsort(-truth.masks[cars].sum(axis=(1, 2)))]:  # largest car that can move clear
        cols = np.flatnonzero(truth.masks[k].any(axis=0))
        shift = cols[-1] - cols[0] + 3
        if cols[-1] + shift >= width:
            continue
        moved = np.zeros_like(truth.masks[k])
        moved[:, shift:] = truth.masks[k][:, :-shift]
        if not (moved & occupied).any():
            break
    else:
        pytest.fail("no car can be moved clear of the others in this frame")
    masks = truth.masks.copy()
    masks[k] = moved
    s = pq_of([(gt, fuse_truth(f, inst=dataclasses.replace(truth, masks=masks)))]).scores()
    assert s.pq[CAR] == pytest.approx((n - 1) / n)
    assert s.things.pq == pytest.approx(np.mean([(n - 1) / n, *others]))
    stuff = [c for c in range(CAMVID.num_classes) if CAMVID.classes[c] not in CAMVID_THINGS]
    area = np.bincount(f.semantic.ravel(), minlength=CAMVID.num_classes)
    lost = np.bincount(f.semantic[moved], minlength=CAMVID.num_classes)
    expected = [(area[c] - lost[c]) / area[c] for c in stuff if area[c]]
    assert s.stuff.rq == 1.0
    assert s.stuff.pq == pytest.approx(np.mean(expected)) and s.stuff.pq < 1.0


# --- outputs --------------------------------------------------------------------------------------------

def test_panoptic_png_and_json_segments_read_back(tmp_path, synth_frames):
    """The mask sink's RGB PNG decodes (libpng through OpenCV) to exactly the map's ids via R + 256 G +
    256^2 B, and the JSON line's ``panoptic`` array lists the same segments; a frame without a panoptic
    result writes no PNG and an empty array, and every earlier key keeps its place."""
    with MaskSink(tmp_path / "masks") as masks, JsonlSink(tmp_path / "r.jsonl", "m") as jsonl:
        for f in synth_frames[:2]:
            result = FrameResult(dataclasses.replace(f.frame, source_id="cam:0"), instances=f.to_instances(),
                                 panoptic=fuse_truth(f, PanopticConfig()))
            masks.write(result)
            jsonl.write(result)
        bare = FrameResult(Frame(np.zeros((4, 4, 3), np.uint8), 99, 3.3, "cam:0"))
        masks.write(bare)
        jsonl.write(bare)
    lines = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    for f, rec in zip(synth_frames[:2], lines):
        p = fuse_truth(f, PanopticConfig())
        bgr = cv2.imread(str(tmp_path / "masks" / f"cam_0_{f.frame.index:06d}_panoptic.png"), cv2.IMREAD_UNCHANGED)
        assert bgr.dtype == np.uint8 and bgr.shape == (360, 640, 3)
        b, g, r = (bgr[..., k].astype(np.int64) for k in range(3))
        decoded = r + 256 * g + 65536 * b
        np.testing.assert_array_equal(decoded, p.ids)
        assert tuple(rec) == SCHEMA_KEYS and SCHEMA_KEYS[-3:] == ("instances", "panoptic", "analytics")
        assert rec["panoptic"] == [
            {"id": s.id, "class": CAMVID.classes[s.category], "isthing": s.isthing, "area": s.area,
             **({"track_id": s.track_id} if s.isthing else {})} for s in p.segments]
        things = [seg for seg in rec["panoptic"] if seg["isthing"]]
        assert sorted(seg["track_id"] for seg in things) == sorted(o.track_id for o in f.objects)
        assert sum(seg["area"] for seg in rec["panoptic"]) == np.count_nonzero(p.ids)
    assert lines[2]["panoptic"] == [] and not (tmp_path / "masks" / "cam_0_000099_panoptic.png").exists()
