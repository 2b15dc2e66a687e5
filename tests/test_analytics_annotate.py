"""The lines-and-zones annotator draws where the geometry says, with the counts of the frame."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analytics import Analytics, AnalyticsConfig, AnalyticsResult
from pipeline.analytics.annotate import LineZoneAnnotator
from pipeline.types import Frame, FrameResult, Instances

GREY = 100
W, H = 240, 180
ZONE = [(20, 80), (140, 80), (140, 170), (20, 170)]
LINE = [(10, 40), (230, 40)]  # A -> B points right: "in" is downwards


def analytics_result(*bottom_centres: tuple[float, float], pts: float = 0.0, engine: Analytics | None = None
                     ) -> AnalyticsResult:
    engine = engine or Analytics(AnalyticsConfig(lines=[{"name": "gate", "points": LINE}],
                                                 zones=[{"name": "box", "polygon": ZONE}]))
    boxes = np.array([[x - 5, y - 10, x + 5, y] for x, y in bottom_centres], np.float32).reshape(-1, 4)
    n = len(boxes)
    inst = Instances(np.zeros(n, np.int32), np.ones(n, np.float32), boxes, np.zeros((n, H, W), bool), ("Car",),
                     np.arange(1, n + 1, dtype=np.int64))
    return engine.update((W, H), pts, inst)


def draw(analytics: AnalyticsResult | None, annotator: LineZoneAnnotator | None = None) -> np.ndarray:
    result = FrameResult(Frame(np.full((H, W, 3), GREY, np.uint8), index=0, pts=0.0), analytics=analytics)
    scene = result.frame.image.copy()
    out = (annotator or LineZoneAnnotator(alpha=0.4)).annotate(scene, result)
    assert out is scene
    return scene


def test_zone_pixels_are_tinted_line_and_arrow_drawn_elsewhere_untouched():
    annotator = LineZoneAnnotator(alpha=0.4)
    analytics = analytics_result((60, 150))
    scene = draw(analytics, annotator)
    overlay = annotator.overlay(analytics.geometry)
    zone_colour = np.array(overlay.zone_colours[0], np.float64)
    line_colour = np.array(overlay.line_colours[0], np.uint8)
    # well inside the zone (away from its outline and its label at the top-left): exactly the blend
    inside = scene[110:160, 60:130].reshape(-1, 3)
    expected = np.round(GREY * 0.6 + zone_colour * 0.4)
    assert (np.abs(inside.astype(np.int64) - expected) <= 1).all()
    # the zone's outline is drawn on its border
    assert (scene[80, 60:120] != GREY).any(axis=1).all() and (scene[169:171, 60:120] != GREY).any(axis=(0, 2)).all()
    # the line: its colour along y = 40 (pixel rows 39 and 40), away from the label and the arrow
    for x in (30, 60, 180, 210):
        assert (scene[38:42, x] == line_colour).all(axis=1).any()
    # the arrow at the line's middle (x = 120) points down, into the "in" side
    assert (scene[45:50, 119:122] == line_colour).all(axis=2).any(axis=1).all()
    # nothing drawn away from the zone, the line and the labels
    assert (scene[60:75, 160:230] == GREY).all() and (scene[100:180, 150:240] == GREY).all()
    assert (scene[0:15, :] == GREY).all()


def test_labels_show_the_counts_and_the_overlay_is_built_once_per_geometry():
    engine = Analytics(AnalyticsConfig(lines=[{"name": "gate", "points": LINE}],
                                       zones=[{"name": "box", "polygon": ZONE}]))
    annotator = LineZoneAnnotator()
    empty = analytics_result(engine=engine)
    first = draw(empty, annotator)
    overlay = annotator.overlay(empty.geometry)
    full = analytics_result((60, 150), (100, 120), pts=0.1, engine=engine)
    assert full.geometry is empty.geometry and full.zones[0].total_occupancy == 2
    second = draw(full, annotator)
    assert annotator.overlay(full.geometry) is overlay
    changed = (first != second).any(axis=2)
    # the counts changed the zone's label (at its top-left corner), nothing else outside the objects' area
    ys, xs = np.nonzero(changed)
    assert len(ys) and ys.min() >= 80 and ys.max() < 100 and xs.min() >= 20 and xs.max() < 90


def test_nothing_is_drawn_without_analytics_and_a_wrong_size_is_refused():
    assert (draw(None) == GREY).all()
    assert (draw(analytics_result((60, 150), engine=Analytics(AnalyticsConfig()))) == GREY).all()
    small = np.full((H // 2, W // 2, 3), GREY, np.uint8)
    result = FrameResult(Frame(small, index=0, pts=0.0), analytics=analytics_result())
    with pytest.raises(ValueError, match="240x180 on a 120x90 scene"):
        LineZoneAnnotator().annotate(small, result)
