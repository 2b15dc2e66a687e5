"""What the analytics engine reports for one frame, and its JSON form (keys in :mod:`pipeline.analytics`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.analytics.geometry import FrameGeometry


@dataclass(frozen=True)
class Crossing:
    """A track that crossed a line at this frame."""

    track_id: int
    class_name: str
    direction: Literal["in", "out"]


@dataclass(frozen=True)
class LineResult:
    name: str
    counts_in: dict[str, int]  # class -> crossings "in" since the start (classes with none omitted)
    counts_out: dict[str, int]  # class -> crossings "out" since the start
    crossings: tuple[Crossing, ...]  # at this frame

    @property
    def total_in(self) -> int:
        return sum(self.counts_in.values())

    @property
    def total_out(self) -> int:
        return sum(self.counts_out.values())


@dataclass(frozen=True)
class Stay:
    """A track's time in a zone: from the stay's first frame to its last one so far (see zones.py)."""

    track_id: int
    class_name: str
    dwell_s: float


@dataclass(frozen=True)
class ZoneResult:
    name: str
    occupancy: dict[str, int]  # class -> objects (tracked or not) with their anchor inside, at this frame
    entries: dict[str, int]  # class -> stays started since the start (a track first seen inside counts)
    # tracks seen in a stay at this frame (inside, or not yet past the hysteresis), with their dwell so far
    inside: tuple[Stay, ...]
    exits: tuple[Stay, ...]  # stays that ended at this frame: track seen outside, or forgotten

    @property
    def total_occupancy(self) -> int:
        return sum(self.occupancy.values())


@dataclass(frozen=True)
class RoadSummary:
    drivable_fraction: float  # of the frame's pixels, labelled with one of the drivable classes
    coverage: dict[str, float]  # class -> fraction of the frame's pixels (SemanticMap.coverage)


@dataclass(frozen=True)
class AnalyticsResult:
    pts: float
    counts: dict[str, int]  # class -> detections at this frame
    tracked: dict[str, int]  # class -> detections with a track id (>= 0) at this frame
    unique: dict[str, int]  # class -> distinct track ids seen since the start
    unique_window: dict[str, int]  # class -> distinct track ids seen in the last unique_window_s seconds
    lines: tuple[LineResult, ...]  # in config order
    zones: tuple[ZoneResult, ...]  # in config order
    road: RoadSummary | None  # None without a semantic map (or without a road section)
    geometry: FrameGeometry  # the lines and zones in pixels of this frame (for annotators)

    def to_record(self) -> dict:
        """The JSON-serialisable form (see :mod:`pipeline.analytics` for the keys)."""
        return {
            "counts": self.counts,
            "tracked": self.tracked,
            "unique": self.unique,
            "unique_window": self.unique_window,
            "lines": {line.name: {"in": line.counts_in, "out": line.counts_out,
                                  "crossed": [{"track_id": c.track_id, "class": c.class_name,
                                               "direction": c.direction} for c in line.crossings]}
                      for line in self.lines},
            "zones": {zone.name: {"occupancy": zone.occupancy, "entries": zone.entries,
                                  "inside": _stays(zone.inside), "exited": _stays(zone.exits)}
                      for zone in self.zones},
            "road": None if self.road is None else {
                "drivable_fraction": round(self.road.drivable_fraction, 6),
                "coverage": {name: round(share, 6) for name, share in self.road.coverage.items()}},
        }


def _stays(stays: tuple[Stay, ...]) -> list[dict]:
    return [{"track_id": s.track_id, "class": s.class_name, "dwell_s": round(s.dwell_s, 3)} for s in stays]
