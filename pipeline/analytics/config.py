"""The ``analytics:`` section of a pipeline config: lines, zones and the road summary.

Every coordinate is given with its units on the same entry (``units: px`` or ``norm``), so that a config
reads unambiguously: normalised coordinates (0..1 of the frame's width and height, origin at the frame's
top-left corner) survive a change of camera resolution, pixels are what one reads off a screenshot.
They are resolved against the frame size once per size (:mod:`pipeline.analytics.geometry`).

Time is seconds throughout (taken from the frames' pts), never frames: a count must not change meaning
when the frame rate does.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

Anchor = Literal["bottom_center", "center", "top_center", "center_left", "center_right",
                 "bottom_left", "bottom_right", "top_left", "top_right"]
Units = Literal["px", "norm"]
Point = tuple[float, float]

MAX_ZONES = 64  # zone membership is one bit per zone in a uint64 image (see geometry.py)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Region(_Strict):
    """What lines and zones share: a name, units, a class filter, the point of a box that is tested, and
    the hysteresis that keeps jitter at a boundary from counting."""

    name: str = Field(min_length=1)
    units: Units = "px"
    # Class names of the instance model that this entry counts; None: all classes.
    classes: tuple[str, ...] | None = Field(default=None, min_length=1)
    # The point of each box that is tested: the bottom centre is where a road user touches the ground,
    # so a line drawn on the road is crossed when the object is on it, whatever its height.
    anchor: Anchor = "bottom_center"
    # How far beyond a line (or outside a zone) the anchor must get, in pixels of the frame, before the
    # object counts as on the other side (out of the zone): a detector's box jitters by a few pixels.
    hysteresis_px: float = Field(default=5.0, ge=0)
    # The same as a fraction of the frame's diagonal, for configs meant for any resolution; replaces
    # hysteresis_px when given.
    hysteresis_frac: float | None = Field(default=None, ge=0, le=0.25)

    @model_validator(mode="after")
    def _one_hysteresis(self) -> _Region:
        if self.hysteresis_frac is not None and "hysteresis_px" in self.model_fields_set:
            raise ValueError("give hysteresis_px or hysteresis_frac, not both")
        return self

    def hysteresis(self, width: int, height: int) -> float:
        """The hysteresis in pixels for a frame of this size."""
        if self.hysteresis_frac is None:
            return self.hysteresis_px
        return self.hysteresis_frac * float(width * width + height * height) ** 0.5


def _check_norm(points: list[Point], info: ValidationInfo) -> None:
    if info.data.get("units") == "norm" and any(not (0 <= v <= 1) for p in points for v in p):
        raise ValueError("with units: norm, coordinates are fractions of the frame, between 0 and 1")


class LineConfig(_Region):
    """A directed counting line from ``points[0]`` (A) to ``points[1]`` (B).

    Direction convention: standing at A and looking towards B (on the screen, y pointing down), "in" is a
    crossing from your left-hand side to your right-hand side, "out" the reverse. The annotator draws an
    arrow pointing the "in" way. Only crossings within the segment from A to B count."""

    points: tuple[Point, Point]

    @field_validator("points")
    @classmethod
    def _valid_points(cls, points: tuple[Point, Point], info: ValidationInfo) -> tuple[Point, Point]:
        if points[0] == points[1]:
            raise ValueError("the line's two points are the same point")
        _check_norm(list(points), info)
        return points


class ZoneConfig(_Region):
    """A polygon (at least 3 vertices, in order around it). An object is inside when its anchor is."""

    polygon: tuple[Point, ...] = Field(min_length=3)

    @field_validator("polygon")
    @classmethod
    def _valid_polygon(cls, polygon: tuple[Point, ...], info: ValidationInfo) -> tuple[Point, ...]:
        _check_norm(list(polygon), info)
        xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
        twice_area = sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(polygon)))
        if twice_area == 0:
            raise ValueError("the polygon has no area (its vertices lie on one line)")
        return polygon


class RoadConfig(_Strict):
    """Which semantic classes are drivable. The default covers our models: CamVid's ``Road`` (lane markings
    are labelled Road in CamVid) and Cityscapes' ``road``; names absent from a model's classes are
    ignored, but at least one must be present."""

    drivable_classes: tuple[str, ...] = Field(default=("Road", "road"), min_length=1)


class AnalyticsConfig(_Strict):
    # Unique objects are also counted over a sliding window this long, in seconds.
    unique_window_s: float = Field(default=60.0, gt=0)
    # Per-track state (line sides, zone stays) is dropped once a track has not been seen for this long,
    # in seconds: memory stays bounded by the recently seen tracks. Set it at least to the tracker's lost
    # timeout, so that a re-activated track keeps its state and is not counted as a new object.
    forget_after_s: float = Field(default=5.0, gt=0)
    lines: tuple[LineConfig, ...] = ()
    zones: tuple[ZoneConfig, ...] = Field(default=(), max_length=MAX_ZONES)
    road: RoadConfig | None = RoadConfig()  # null: no road summary

    @field_validator("lines", "zones")
    @classmethod
    def _distinct_names(cls, entries: tuple[LineConfig | ZoneConfig, ...]) -> tuple:
        names = [e.name for e in entries]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"names must be distinct, repeated: {', '.join(repeated)}")
        return entries

    @property
    def identity_horizon_s(self) -> float:
        """How long a track's id, class and last sighting are kept: long enough for the sliding window,
        and at least as long as its state, so that a track with state is never counted as new."""
        return max(self.forget_after_s, self.unique_window_s)
