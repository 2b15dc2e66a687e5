"""Polygon zones on scripted trajectories: occupancy, entries, dwell times from pts, exits."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analytics import Analytics, AnalyticsConfig
from pipeline.types import Instances

CLASSES = ("Car", "Pedestrian", "Bicyclist")
SIZE = (320, 240)
SQUARE = [(100, 100), (200, 100), (200, 200), (100, 200)]


def objects(*tracks: tuple[int, str, float, float]) -> Instances:
    """One detection per (track id, class, x, y): a 20x20 box whose bottom centre is at (x, y)."""
    boxes = np.array([[x - 10, y - 20, x + 10, y] for _, _, x, y in tracks], np.float32).reshape(-1, 4)
    return Instances(classes=np.array([CLASSES.index(t[1]) for t in tracks], np.int32),
                     scores=np.full(len(tracks), 0.9, np.float32), boxes=boxes,
                     masks=np.zeros((len(tracks), 0, 0), bool), class_names=CLASSES,
                     track_ids=np.array([t[0] for t in tracks], np.int64))


def zone_engine(*zones: dict, **config) -> Analytics:
    return Analytics(AnalyticsConfig(zones=list(zones) or [{"name": "box", "polygon": SQUARE}], **config))


def test_occupancy_entries_and_dwell_follow_the_pts():
    """Uneven frame times; the car is inside from pts 1.0 to 2.9, seen outside at 3.4."""
    script = [(0.0, 50), (0.4, 80), (1.0, 120), (1.7, 150), (2.2, 160), (2.9, 190), (3.4, 230)]
    a = zone_engine()
    results = [a.update(SIZE, pts, objects((7, "Car", 150, y))) for pts, y in script]
    occupancy = [r.zones[0].occupancy for r in results]
    assert occupancy == [{}, {}, {"Car": 1}, {"Car": 1}, {"Car": 1}, {"Car": 1}, {}]
    dwell = [[(s.track_id, s.dwell_s) for s in r.zones[0].inside] for r in results]
    assert dwell[:2] == [[], []] and dwell[-1] == []
    assert [d[0][1] for d in dwell[2:6]] == pytest.approx([0.0, 0.7, 1.2, 1.9])
    exits = results[-1].zones[0].exits
    assert len(exits) == 1 and exits[0].track_id == 7 and exits[0].class_name == "Car"
    assert exits[0].dwell_s == pytest.approx(1.9)  # to its last frame inside, not to the frame seen outside
    assert all(r.zones[0].exits == () for r in results[:-1])
    assert results[-1].zones[0].entries == {"Car": 1}


def test_occupancy_counts_every_detection_per_class_stays_only_tracks():
    a = zone_engine()
    result = a.update(SIZE, 0.0, objects((1, "Car", 120, 150), (-1, "Car", 180, 150),
                                         (2, "Pedestrian", 150, 190), (3, "Pedestrian", 250, 150)))
    zone = result.zones[0]
    assert zone.occupancy == {"Car": 2, "Pedestrian": 1}
    assert sorted(s.track_id for s in zone.inside) == [1, 2]
    assert zone.entries == {"Car": 1, "Pedestrian": 1}  # a track first seen inside has entered


def test_jitter_on_the_boundary_neither_ends_nor_restarts_a_stay():
    rng = np.random.default_rng(3)
    ys = [150, 180, *list(200 + rng.uniform(-3, 3, 200)), 180]  # inside, then on the bottom edge
    a = zone_engine({"name": "box", "polygon": SQUARE, "hysteresis_px": 5})
    results = [a.update(SIZE, i * 0.1, objects((1, "Car", 150, y))) for i, y in enumerate(ys)]
    assert results[-1].zones[0].entries == {"Car": 1}
    assert not any(r.zones[0].exits for r in results)
    assert results[-1].zones[0].inside[0].dwell_s == pytest.approx((len(ys) - 1) * 0.1)
    naive = zone_engine({"name": "box", "polygon": SQUARE, "hysteresis_px": 0})
    results = [naive.update(SIZE, i * 0.1, objects((1, "Car", 150, y))) for i, y in enumerate(ys)]
    assert results[-1].zones[0].entries["Car"] > 10


def test_leaving_past_the_hysteresis_ends_the_stay_and_coming_back_starts_another():
    a = zone_engine({"name": "box", "polygon": SQUARE, "hysteresis_px": 5})
    ys = [150, 190, 203, 210, 190, 150]  # 203: within 5 px of the edge, still in; 210: out
    results = [a.update(SIZE, i * 1.0, objects((1, "Car", 150, y))) for i, y in enumerate(ys)]
    assert [len(r.zones[0].exits) for r in results] == [0, 0, 0, 1, 0, 0]
    assert results[3].zones[0].exits[0].dwell_s == pytest.approx(2.0)
    assert results[-1].zones[0].entries == {"Car": 2}
    assert results[-1].zones[0].inside[0].dwell_s == pytest.approx(1.0)  # the new stay began at pts 4


def test_a_track_forgotten_inside_ends_its_stay():
    a = zone_engine(forget_after_s=1.0)
    a.update(SIZE, 0.0, objects((4, "Bicyclist", 150, 150)))
    a.update(SIZE, 0.5, objects((4, "Bicyclist", 150, 160)))
    assert a.update(SIZE, 1.4, objects()).zones[0].exits == ()
    result = a.update(SIZE, 1.6, objects())  # last seen 0.5 s: gone more than 1.0 s
    (stay,) = result.zones[0].exits
    assert (stay.track_id, stay.class_name, stay.dwell_s) == (4, "Bicyclist", pytest.approx(0.5))
    assert len(a.state) == 0


def test_overlapping_zones_class_filters_and_a_triangle():
    triangle = [(0, 0), (300, 0), (0, 200)]  # hypotenuse: x / 300 + y / 200 = 1
    a = zone_engine({"name": "box", "polygon": SQUARE},
                    {"name": "cars", "polygon": [(140, 140), (240, 140), (240, 230), (140, 230)], "classes": ["Car"]},
                    {"name": "tri", "polygon": triangle, "anchor": "center"})
    result = a.update(SIZE, 0.0, objects(
        (1, "Car", 150, 150),  # box and cars
        (2, "Pedestrian", 160, 160),  # box only: filtered out of cars
        (3, "Car", 30, 190),  # centre (30, 180) on the hypotenuse; its pixel's centre (30.5, 180.5) is outside
        (4, "Car", 30, 185),  # centre (30, 175): 0.1 + 0.875 < 1, inside the triangle
    ))
    box, cars, tri = result.zones
    assert box.occupancy == {"Car": 1, "Pedestrian": 1}
    assert cars.occupancy == {"Car": 1} and [s.track_id for s in cars.inside] == [1]
    assert [s.track_id for s in tri.inside] == [4]
