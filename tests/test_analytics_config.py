"""The ``analytics:`` config section: YAML in, validation errors as one line naming the key, and normalised
coordinates that resolve to the same pixels as their pixel equivalents."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from pipeline.analytics import Analytics, AnalyticsConfig
from pipeline.analytics.geometry import resolve
from pipeline.types import Instances
from pipeline.yamlfile import validation_message

EXAMPLE = """
unique_window_s: 60
forget_after_s: 5
lines:
  - name: stop_line
    points: [[0.1, 0.8], [0.9, 0.8]]      # A -> B; "in" = crossing from A->B's left to its right (downwards here)
    units: norm
    classes: [Car, Bicyclist]
    hysteresis_frac: 0.005                 # of the frame diagonal
  - name: kerb
    points: [[40, 300], [40, 100]]
    anchor: bottom_center
    hysteresis_px: 6
zones:
  - name: crossing
    polygon: [[0.3, 0.6], [0.7, 0.6], [0.75, 0.75], [0.25, 0.75]]
    units: norm
    classes: [Pedestrian, Bicyclist]
road:
  drivable_classes: [Road, road]
"""


def errors_for(section: dict) -> str:
    with pytest.raises(ValidationError) as e:
        AnalyticsConfig.model_validate(section)
    message = validation_message("run.yaml", e.value)
    assert "\n" not in message
    return message


def test_the_example_section_validates():
    config = AnalyticsConfig.model_validate(yaml.safe_load(EXAMPLE))
    assert [line.name for line in config.lines] == ["stop_line", "kerb"]
    assert config.lines[0].hysteresis(640, 480) == pytest.approx(0.005 * 800)
    assert config.lines[1].hysteresis(640, 480) == 6
    assert config.zones[0].anchor == "bottom_center" and config.zones[0].units == "norm"
    Analytics(config).check_classes(("Car", "Pedestrian", "Bicyclist"), ("Sky", "Road"))


@pytest.mark.parametrize("section, key, words", [
    ({"lines": [{"name": "a", "points": [[0, 0], [9, 9]], "colour": "red"}]}, "lines.0.colour", "Extra inputs"),
    ({"lines": [{"name": "a", "points": [[0, 0], [9, 9], [5, 5]]}]}, "lines.0.points", "at most 2"),
    ({"lines": [{"name": "a", "points": [[3, 4], [3, 4]]}]}, "lines.0.points", "same point"),
    ({"lines": [{"name": "a", "points": [[0, 0], [640, 480]], "units": "norm"}]}, "lines.0.points", "between 0 and 1"),
    ({"lines": [{"name": "a", "points": [[0, 0], [9, 9]], "units": "cm"}]}, "lines.0.units", "'px' or 'norm'"),
    ({"lines": [{"name": "a", "points": [[0, 0], [9, 9]], "anchor": "feet"}]}, "lines.0.anchor", "bottom_center"),
    ({"lines": [{"name": "a", "points": [[0, 0], [9, 9]], "hysteresis_px": 2, "hysteresis_frac": 0.01}]},
     "lines.0", "not both"),
    ({"lines": [{"name": "a", "points": [[0, 0], [9, 9]], "hysteresis_px": -1}]}, "lines.0.hysteresis_px",
     "greater than or equal to 0"),
    ({"lines": [{"name": "a", "points": [[0, 0], [9, 9]]}, {"name": "a", "points": [[1, 0], [9, 9]]}]},
     "lines", "repeated: a"),
    ({"zones": [{"name": "z", "polygon": [[0, 0], [5, 5]]}]}, "zones.0.polygon", "at least 3"),
    ({"zones": [{"name": "z", "polygon": [[0, 0], [5, 5], [10, 10]]}]}, "zones.0.polygon", "no area"),
    ({"unique_window_s": 0}, "unique_window_s", "greater than 0"),
    ({"road": {"drivable_classes": []}}, "road.drivable_classes", "at least 1"),
])
def test_mistakes_are_one_line_naming_the_key(section, key, words):
    message = errors_for(section)
    assert message.startswith(f"run.yaml: key '{key}': ") and words in message, message


def test_normalised_coordinates_resolve_to_the_pixel_ones():
    norm = AnalyticsConfig(lines=[{"name": "l", "points": [(0.25, 0.5), (0.75, 0.5)], "units": "norm"}],
                           zones=[{"name": "z", "polygon": [(0.1, 0.2), (0.6, 0.25), (0.35, 0.9)], "units": "norm",
                                   "hysteresis_frac": 0.01}])
    px = AnalyticsConfig(lines=[{"name": "l", "points": [(160, 180), (480, 180)]}],
                         zones=[{"name": "z", "polygon": [(64, 72), (384, 90), (224, 324)],
                                 "hysteresis_px": 0.01 * 734.3024}])
    g_norm, g_px = resolve(norm, 640, 360), resolve(px, 640, 360)
    np.testing.assert_allclose(g_norm.line_a, [[160, 180]])
    np.testing.assert_allclose(g_norm.line_b, g_px.line_b)
    np.testing.assert_allclose(g_norm.zone_polygons[0], g_px.zone_polygons[0])
    np.testing.assert_array_equal(g_norm.zone_bits, g_px.zone_bits)
    np.testing.assert_array_equal(g_norm.zone_outer_bits, g_px.zone_outer_bits)
    assert g_norm.zone_bits.any() and (g_norm.zone_outer_bits != g_norm.zone_bits).any()
    # and the same trajectory gives the same counts
    boxes = [(300, y - 20, 320, y) for y in (150, 170, 200, 230, 260)]
    counts = []
    for config in (norm, px):
        a = Analytics(config)
        for i, box in enumerate(boxes):
            inst = Instances(np.zeros(1, np.int32), np.ones(1, np.float32), np.array([box], np.float32),
                             np.zeros((1, 0, 0), bool), ("Car",), np.array([1], np.int64))
            result = a.update((640, 360), i * 0.1, inst)
        counts.append(result.to_record())
    assert counts[0] == counts[1] and counts[0]["lines"]["l"]["in"] == {"Car": 1}


def test_a_zone_holds_exactly_the_pixels_whose_centre_is_inside():
    """Pixel centres exactly on an edge go to one side only (half-open rows), so that zones sharing an
    edge split its pixels instead of both taking them."""
    config = AnalyticsConfig(zones=[{"name": "upper", "polygon": [(10, 20), (30, 20), (30, 25.5), (10, 25.5)]},
                                    {"name": "lower", "polygon": [(10, 25.5), (30, 25.5), (30, 30), (10, 30)]},
                                    {"name": "t", "polygon": [(0, 0), (40, 0), (0, 40)], "hysteresis_px": 3}])
    g = resolve(config, 50, 50)
    upper, lower = g.zone_mask(0), g.zone_mask(1)
    assert not (upper & lower).any()
    expected = np.zeros((50, 50), bool)
    expected[20:30, 10:30] = True
    np.testing.assert_array_equal(upper | lower, expected)
    assert upper[20:25, 10:30].all() and not lower[20:25].any()
    ys, xs = np.mgrid[0:50, 0:50] + 0.5
    np.testing.assert_array_equal(g.zone_mask(2), xs + ys < 40)
    outer = ((g.zone_outer_bits >> 2) & 1).astype(bool)
    # pixels within 3 px (centre to centre) of a triangle pixel: the hypotenuse moved out by about 3 px
    reach = 3 * np.sqrt(2)
    assert outer[xs + ys < 40 + reach - 1.5].all() and not outer[xs + ys > 40 + reach + 1.5].any()
