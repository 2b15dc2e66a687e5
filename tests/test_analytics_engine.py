"""The analytics engine: per-frame and unique counts, bounded memory over a long run, the road summary,
class checks and the JSON record."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from pipeline.analytics import Analytics, AnalyticsConfig
from pipeline.errors import EdgeSegError
from pipeline.labels import CAMVID, CITYSCAPES
from pipeline.types import Instances, SemanticMap

CLASSES = ("Car", "Pedestrian", "Bicyclist")
SIZE = (320, 240)


def objects(*tracks: tuple[int, str, float, float], track_ids: bool = True) -> Instances:
    """One detection per (track id, class, x, y): a 20x20 box whose bottom centre is at (x, y)."""
    boxes = np.array([[x - 10, y - 20, x + 10, y] for _, _, x, y in tracks], np.float32).reshape(-1, 4)
    return Instances(classes=np.array([CLASSES.index(t[1]) for t in tracks], np.int32),
                     scores=np.full(len(tracks), 0.9, np.float32), boxes=boxes,
                     masks=np.zeros((len(tracks), 0, 0), bool), class_names=CLASSES,
                     track_ids=np.array([t[0] for t in tracks], np.int64) if track_ids else None)


def test_per_frame_counts_all_and_tracked():
    a = Analytics(AnalyticsConfig())
    result = a.update(SIZE, 0.0, objects((1, "Car", 10, 10), (-1, "Car", 50, 50), (2, "Pedestrian", 90, 90),
                                         (-1, "Bicyclist", 20, 20)))
    assert result.counts == {"Car": 2, "Pedestrian": 1, "Bicyclist": 1}
    assert result.tracked == {"Car": 1, "Pedestrian": 1}
    untracked = a.update(SIZE, 0.1, objects((0, "Car", 10, 10), track_ids=False))
    assert untracked.counts == {"Car": 1} and untracked.tracked == {}
    empty = a.update(SIZE, 0.2, None)
    assert empty.counts == {} and empty.tracked == {} and empty.road is None


def test_unique_objects_over_the_run_and_the_window():
    a = Analytics(AnalyticsConfig(unique_window_s=1.0, forget_after_s=0.5))
    script = [
        (0.0, [(1, "Car"), (2, "Car")]),
        (0.5, [(1, "Car"), (2, "Car")]),
        (1.0, [(3, "Pedestrian")]),
        (2.0, [(3, "Pedestrian"), (4, "Car")]),
        (2.8, [(1, "Car")]),  # track 1 again after 2.3 s unseen: the window (1 s) has let it go
        (3.5, []),
    ]
    results = {pts: a.update(SIZE, pts, objects(*[(i, c, 50, 50) for i, c in tracks])) for pts, tracks in script}
    assert results[0.5].unique == {"Car": 2} and results[0.5].unique_window == {"Car": 2}
    assert results[2.0].unique == {"Car": 3, "Pedestrian": 1}
    assert results[2.0].unique_window == {"Car": 1, "Pedestrian": 1}  # seen within [1.0, 2.0]: 3 and 4
    # an id gone longer than both horizons is counted again: the documented cost of bounded memory
    assert results[2.8].unique == {"Car": 4, "Pedestrian": 1}
    assert results[2.8].unique_window == {"Car": 2, "Pedestrian": 1}  # seen within [1.8, 2.8]: 1, 3 and 4
    assert results[3.5].unique_window == {"Car": 1}  # within [2.5, 3.5]: 1 only


def test_memory_stays_bounded_over_ten_thousand_frames():
    """10 fps for 1000 s: a car enters every 0.5 s at the top, drives down 4 s through a line and a zone,
    and leaves. About 8 are in view at a time; every car crosses the line once and stays 1 s in the zone."""
    config = AnalyticsConfig(unique_window_s=3.0, forget_after_s=1.0,
                             lines=[{"name": "gate", "points": [(0, 120), (320, 120)]}],
                             zones=[{"name": "box", "polygon": [(0, 140), (320, 140), (320, 200), (0, 200)]}])
    a = Analytics(config)
    lifetime, every, speed = 40, 5, 60.0  # frames, frames, px/s
    largest = [0, 0]
    start = time.perf_counter()
    for frame in range(10_000):
        born = np.arange(max(0, frame - lifetime + 1) // every * every, frame + 1, every)
        born = born[born > frame - lifetime]
        ys = 0.0 + speed * (frame - born) / 10
        result = a.update(SIZE, frame / 10, objects(*[(int(b) + 1, "Car", 160, float(y)) for b, y in zip(born, ys)]))
        largest = [max(largest[0], len(a.identity)), max(largest[1], len(a.state))]
    elapsed = time.perf_counter() - start
    cars = 10_000 // every
    finished = (10_000 - lifetime) // every + 1  # cars whose whole path lies within the run
    assert result.unique == {"Car": cars}
    assert finished <= result.lines[0].counts_in["Car"] <= cars
    assert finished <= result.zones[0].entries["Car"] <= cars
    # live cars (8) plus those seen within the horizon: 3 s of arrivals (6) and 1 s (2)
    assert largest[0] <= 8 + 6 + 1 and largest[1] <= 8 + 2 + 1
    assert elapsed < 10, f"{elapsed:.1f} s for 10k updates"


def road_map(classes: tuple[str, ...], rows: dict[str, slice], width: int = 50) -> SemanticMap:
    labels = np.zeros((100, width), np.uint8)
    for name, span in rows.items():
        labels[span] = classes.index(name)
    return SemanticMap(labels, classes, np.zeros((len(classes), 3), np.uint8))


def test_road_summary_from_a_hand_built_map():
    semantic = road_map(CAMVID.classes, {"Sky": slice(0, 30), "Building": slice(30, 40), "Road": slice(40, 90),
                                         "Pavement": slice(90, 100)})
    semantic.labels[60:70, 10:20] = CAMVID.index("Car")  # a car on the road: 100 px not drivable
    result = Analytics(AnalyticsConfig()).update((50, 100), 0.0, semantic=semantic)
    assert result.road.drivable_fraction == pytest.approx((50 * 50 - 100) / 5000)
    assert result.road.coverage == semantic.coverage
    custom = Analytics(AnalyticsConfig(road={"drivable_classes": ["Road", "Pavement"]}))
    assert custom.update((50, 100), 0.0, semantic=semantic).road.drivable_fraction == pytest.approx(0.58)
    cityscapes = road_map(CITYSCAPES.classes, {"sky": slice(0, 25), "road": slice(25, 100)})
    assert Analytics(AnalyticsConfig()).update((50, 100), 0.0, semantic=cityscapes).road.drivable_fraction == 0.75
    off = Analytics(AnalyticsConfig(road=None))
    assert off.update((50, 100), 0.0, semantic=semantic).road is None


def test_misspelt_classes_are_one_line_errors_naming_the_key():
    config = AnalyticsConfig(lines=[{"name": "g", "points": [(0, 1), (5, 1)]}],
                             zones=[{"name": "z", "polygon": [(0, 0), (9, 0), (9, 9)], "classes": ["Car", "Cra"]}])
    with pytest.raises(EdgeSegError, match=r"^key 'analytics\.zones\.0\.classes': 'Cra' is not a class .*Car") as e:
        Analytics(config).check_classes(instance_classes=CLASSES)
    assert "\n" not in str(e.value)
    with pytest.raises(EdgeSegError, match="zones.0.classes"):
        Analytics(config).update(SIZE, 0.0, objects((1, "Car", 5, 5)))
    road = Analytics(AnalyticsConfig(road={"drivable_classes": ["Raod"]}))
    with pytest.raises(EdgeSegError, match=r"^key 'analytics\.road\.drivable_classes': none of Raod"):
        road.check_classes(semantic_classes=CAMVID.classes)
    Analytics(AnalyticsConfig()).check_classes(CLASSES, CITYSCAPES.classes)  # the defaults fit our models


def test_the_record_is_json_with_the_documented_keys():
    config = AnalyticsConfig(lines=[{"name": "gate", "points": [(0, 100), (320, 100)]}],
                             zones=[{"name": "box", "polygon": [(100, 100), (200, 100), (200, 200), (100, 200)]}])
    a = Analytics(config)
    semantic = road_map(CAMVID.classes, {"Sky": slice(0, 40), "Road": slice(40, 100)})
    a.update(SIZE, 0.0, objects((5, "Car", 150, 90)))
    result = a.update(SIZE, 0.25, objects((5, "Car", 150, 120), (-1, "Pedestrian", 10, 10)), semantic)
    record = json.loads(json.dumps(result.to_record()))
    assert record == {
        "counts": {"Car": 1, "Pedestrian": 1},
        "tracked": {"Car": 1},
        "unique": {"Car": 1},
        "unique_window": {"Car": 1},
        "lines": {"gate": {"in": {"Car": 1}, "out": {},
                           "crossed": [{"track_id": 5, "class": "Car", "direction": "in"}]}},
        "zones": {"box": {"occupancy": {"Car": 1}, "entries": {"Car": 1},
                          "inside": [{"track_id": 5, "class": "Car", "dwell_s": 0.0}], "exited": []}},
        "road": {"drivable_fraction": 0.6, "coverage": {"Sky": 0.4, "Road": 0.6}},
    }


def test_a_new_frame_size_resolves_the_geometry_again_and_resets_sides():
    config = AnalyticsConfig(lines=[{"name": "mid", "points": [(0, 0.5), (1, 0.5)], "units": "norm"}])
    a = Analytics(config)
    first = a.update((100, 100), 0.0, objects((1, "Car", 50, 40)))
    assert first.geometry.line_a.tolist() == [[0, 50]]
    second = a.update((200, 200), 0.1, objects((1, "Car", 100, 120)))  # below the line, but in a new geometry
    assert second.geometry.line_a.tolist() == [[0, 100]] and second.geometry is not first.geometry
    assert second.lines[0].total_in == 0
    assert a.update((200, 200), 0.2, objects((1, "Car", 100, 80))).lines[0].counts_out == {"Car": 1}
    assert a.update((200, 200), 0.3, objects()).geometry is second.geometry
