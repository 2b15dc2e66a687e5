"""Directional line crossing on scripted trajectories with known answers."""

from __future__ import annotations

import numpy as np

from pipeline.analytics import Analytics, AnalyticsConfig, AnalyticsResult
from pipeline.types import Instances

CLASSES = ("Car", "Pedestrian", "Bicyclist")
SIZE = (200, 200)


def objects(*tracks: tuple[int, str, float, float], height: float = 20.0) -> Instances:
    """One detection per (track id, class, x, y): a 20 px wide box whose bottom centre is at (x, y)."""
    boxes = np.array([[x - 10, y - height, x + 10, y] for _, _, x, y in tracks], np.float32).reshape(-1, 4)
    return Instances(classes=np.array([CLASSES.index(t[1]) for t in tracks], np.int32),
                     scores=np.full(len(tracks), 0.9, np.float32), boxes=boxes,
                     masks=np.zeros((len(tracks), 0, 0), bool), class_names=CLASSES,
                     track_ids=np.array([t[0] for t in tracks], np.int64))


def engine(**line) -> Analytics:
    """A horizontal line at y = 100 from x = 0 to 200 (A -> B points right, so "in" is downwards)."""
    spec = {"name": "gate", "points": [(0, 100), (200, 100)], **line}
    return Analytics(AnalyticsConfig(lines=[spec]))


def run(analytics: Analytics, ys: list[float], x: float = 100.0, track: int = 1, cls: str = "Car",
        dt: float = 0.1) -> list[AnalyticsResult]:
    return [analytics.update(SIZE, i * dt, objects((track, cls, x, y))) for i, y in enumerate(ys)]


def test_a_track_crossing_once_counts_once_at_the_frame_beyond_the_hysteresis():
    results = run(engine(hysteresis_px=5), [60, 70, 80, 90, 98, 103, 108, 120, 140, 160])
    gate = results[-1].lines[0]
    assert gate.counts_in == {"Car": 1} and gate.counts_out == {}
    crossed_at = [i for i, r in enumerate(results) if r.lines[0].crossings]
    assert crossed_at == [6]  # y = 108: the first position more than 5 px past the line
    assert results[6].lines[0].crossings[0].track_id == 1
    assert results[6].lines[0].crossings[0].direction == "in"


def test_the_reverse_direction_counts_out():
    gate = run(engine(), [160, 140, 120, 100, 80, 60])[-1].lines[0]
    assert gate.counts_in == {} and gate.counts_out == {"Car": 1}


def test_jitter_on_the_line_counts_nothing_extra():
    rng = np.random.default_rng(0)
    jitter = list(100 + rng.uniform(-3, 3, 300))
    path = [40, 60, 80, 120, 140, 110, *jitter, 106, 130]  # cross, come back, jitter on the line, leave on its far side
    gate = run(engine(hysteresis_px=5), path)[-1].lines[0]
    assert gate.counts_in == {"Car": 1} and gate.counts_out == {}
    # without hysteresis the same track is counted over and over: the test can tell the difference
    naive = run(engine(hysteresis_px=0), path)[-1].lines[0]
    assert naive.total_in > 10 and naive.total_out > 10


def test_back_and_forth_counts_each_crossing():
    results = run(engine(), [60, 80, 120, 140, 120, 80, 60, 80, 120, 150])
    gate = results[-1].lines[0]
    assert gate.counts_in == {"Car": 2} and gate.counts_out == {"Car": 1}
    events = [(i, c.direction) for i, r in enumerate(results) for c in r.lines[0].crossings]
    assert events == [(2, "in"), (5, "out"), (8, "in")]


def test_crossing_beyond_the_segment_counts_nothing():
    short = dict(points=[(50, 100), (150, 100)])
    assert run(engine(**short), [60, 80, 120, 140], x=170)[-1].lines[0].total_in == 0
    assert run(engine(**short), [60, 80, 120, 140], x=149)[-1].lines[0].total_in == 1
    # round the end of the segment to the "in" side (no count), then back across it (one "out")
    a = engine(**short)
    path = [(100, 60), (170, 60), (170, 140), (100, 140), (100, 60)]
    results = [a.update(SIZE, i * 0.1, objects((1, "Car", x, y))) for i, (x, y) in enumerate(path)]
    assert results[-1].lines[0].counts_in == {} and results[-1].lines[0].counts_out == {"Car": 1}


def test_a_crossing_between_frames_far_apart_is_placed_on_the_path():
    """Big steps (low frame rate): the path from (20, 60) to (180, 140) meets y = 100 at x = 100, inside
    a segment from 50 to 150; the path from (160, 60) to (240, 140) meets it at x = 200, outside."""
    short = dict(points=[(50, 100), (150, 100)])
    a = engine(**short)
    a.update(SIZE, 0.0, objects((1, "Car", 20, 60), (2, "Car", 160, 60)))
    result = a.update(SIZE, 1.0, objects((1, "Car", 180, 140), (2, "Car", 240, 140)))
    assert [c.track_id for c in result.lines[0].crossings] == [1]


def test_two_classes_are_counted_separately_and_filters_apply():
    config = AnalyticsConfig(lines=[{"name": "all", "points": [(0, 100), (200, 100)]},
                                    {"name": "cars", "points": [(0, 100), (200, 100)], "classes": ["Car"]}])
    a = Analytics(config)
    for i, y in enumerate([60, 80, 120, 140]):
        result = a.update(SIZE, i * 0.1, objects((1, "Car", 50, y), (2, "Pedestrian", 150, y),
                                                 (3, "Pedestrian", 120, 200 - y)))
    every, cars = result.lines
    assert every.counts_in == {"Car": 1, "Pedestrian": 1} and every.counts_out == {"Pedestrian": 1}
    assert cars.counts_in == {"Car": 1} and cars.counts_out == {}


def test_untracked_detections_never_count():
    a = engine()
    for i, y in enumerate([60, 80, 120, 140]):
        result = a.update(SIZE, i * 0.1, objects((-1, "Car", 100, y)))
    assert result.lines[0].total_in == 0
    b = engine()
    for i, y in enumerate([60, 80, 120, 140]):
        inst = objects((1, "Car", 100, y))
        result = b.update(SIZE, i * 0.1, Instances(inst.classes, inst.scores, inst.boxes, inst.masks, CLASSES))
    assert result.lines[0].total_in == 0


def test_direction_convention_on_vertical_and_diagonal_lines():
    """A -> B pointing down the image: its right-hand side is the image's left, so right-to-left is "in"."""
    down = Analytics(AnalyticsConfig(lines=[{"name": "v", "points": [(100, 0), (100, 200)]}]))
    for i, x in enumerate([150, 130, 70, 50]):
        result = down.update(SIZE, i * 0.1, objects((1, "Car", x, 100)))
    assert result.lines[0].counts_in == {"Car": 1}
    # A -> B down-right: its right-hand side is below-left, where y > x
    diagonal = Analytics(AnalyticsConfig(lines=[{"name": "d", "points": [(0, 0), (200, 200)]}]))
    for i, (x, y) in enumerate([(150, 50), (120, 80), (80, 120), (50, 150)]):
        result = diagonal.update(SIZE, i * 0.1, objects((1, "Car", x, y)))
    assert result.lines[0].counts_in == {"Car": 1}


def test_the_anchor_decides_which_point_of_the_box_must_cross():
    """A 40 px tall box whose bottom goes from y = 80 to 120: its bottom crosses y = 100, its top
    (40 to 80) does not."""
    ys = [80, 90, 110, 120]
    assert run(engine(), ys)[-1].lines[0].total_in == 1
    top = engine(anchor="top_center")
    results = [top.update(SIZE, i * 0.1, objects((1, "Car", 100, y), height=40)) for i, y in enumerate(ys)]
    assert results[-1].lines[0].total_in == 0


def test_a_track_unseen_for_a_while_still_counts_but_a_forgotten_one_does_not():
    a = Analytics(AnalyticsConfig(forget_after_s=2.0, lines=[{"name": "gate", "points": [(0, 100), (200, 100)]}]))
    a.update(SIZE, 0.0, objects((1, "Car", 100, 60), (2, "Car", 50, 60)))
    a.update(SIZE, 1.5, objects((2, "Car", 50, 60)))  # track 1 unseen (occluded) for 1.5 s
    result = a.update(SIZE, 1.6, objects((1, "Car", 100, 140)))
    assert [c.track_id for c in result.lines[0].crossings] == [1]
    # track 2 was last seen at 1.5 s: at 3.6 s it has been gone 2.1 s, its side is forgotten
    result = a.update(SIZE, 3.6, objects((2, "Car", 50, 140)))
    assert result.lines[0].crossings == () and result.lines[0].total_in == 1
