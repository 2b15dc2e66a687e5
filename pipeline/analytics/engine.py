"""The analytics engine: one per source, fed every frame's instances and semantic map, in pts order.

Two tables of per-track rows bound its memory: the identity table (class at first sighting, last
sighting) keeps the ids seen within ``max(unique_window_s, forget_after_s)`` for the sliding-window count
and so that a returning track is not counted as new; the state table (line sides, zone stays) keeps the
ids seen within ``forget_after_s``. Over a run only running totals per class grow, by one number per
class. Class filters and drivable classes are checked against a model's class names the first time
they are met (or up front with :meth:`Analytics.check_classes`): a misspelt class would otherwise count
nothing, silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.analytics.classes import ClassRegistry, Tally
from pipeline.analytics.config import AnalyticsConfig, LineConfig, ZoneConfig
from pipeline.analytics.geometry import FrameGeometry, resolve
from pipeline.analytics.lines import LineCounter
from pipeline.analytics.result import AnalyticsResult, RoadSummary
from pipeline.analytics.table import Column, TrackTable
from pipeline.analytics.zones import ZoneMonitor
from pipeline.errors import EdgeSegError
from pipeline.types import Instances, SemanticMap


@dataclass(frozen=True)
class _ClassView:
    """How one instance model's class indices read for the engine."""

    indices: np.ndarray  # (C,) engine-wide index per model class
    line_ok: np.ndarray  # (C, L) bool: the class passes the line's filter
    zone_ok: np.ndarray  # (C, Z) bool


class Analytics:
    def __init__(self, config: AnalyticsConfig):
        self.config = config
        self.registry = ClassRegistry()
        self._lines = LineCounter(config)
        self._zones = ZoneMonitor(config)
        self._unique = Tally(1)
        self.identity = TrackTable({"class": Column((), np.int64, -1)})
        self.state = TrackTable({"class": Column((), np.int64, -1), **self._lines.columns, **self._zones.columns})
        self._geometry: FrameGeometry | None = None
        self._views: dict[tuple[str, ...], _ClassView] = {}
        self._drivable: dict[tuple[str, ...], tuple[str, ...]] = {}

    def check_classes(self, instance_classes: tuple[str, ...] | None = None,
                      semantic_classes: tuple[str, ...] | None = None) -> None:
        """Raise :class:`EdgeSegError` now if a class filter names a class the instance model lacks, or no
        drivable class is among the semantic model's classes (else it is raised at the first frame)."""
        if instance_classes is not None:
            self._view(tuple(instance_classes))
        if semantic_classes is not None and self.config.road is not None:
            self._drivable_names(tuple(semantic_classes))

    def geometry(self, width: int, height: int) -> FrameGeometry:
        """The lines and zones in pixels of a ``width`` x ``height`` frame (resolved once per size). A size
        change resets the tracks' line sides and zone stays: positions in the old size mean nothing now."""
        if self._geometry is None or self._geometry.size != (width, height):
            if self._geometry is not None:
                self.state.reset(tuple(self._lines.columns) + tuple(self._zones.columns))
            self._geometry = resolve(self.config, width, height)
        return self._geometry

    def update(self, frame_size: tuple[int, int], pts: float, instances: Instances | None = None,
               semantic: SemanticMap | None = None) -> AnalyticsResult:
        """Analytics of one frame: ``frame_size`` (width, height), its ``pts`` in seconds, and whatever
        results it has (``instances.track_ids`` once a tracker has run)."""
        config = self.config
        geometry = self.geometry(*frame_size)
        stale = self.state.stale(pts - config.forget_after_s)
        self._zones.forget(self.state, stale, self.registry)
        self.state.drop(stale)
        self.identity.drop(self.identity.stale(pts - config.identity_horizon_s))

        if instances is None:
            instances = Instances.empty(0, 0, ())
        view = self._view(instances.class_names)
        local = np.asarray(instances.classes, np.int64)
        classes = view.indices[local]
        ids = instances.track_ids if instances.track_ids is not None else np.full(len(local), -1, np.int64)
        tracked = np.asarray(ids) >= 0
        track_ids, track_classes = np.asarray(ids, np.int64)[tracked], classes[tracked]

        id_rows, new = self.identity.rows(track_ids)
        self.identity["class"][id_rows[new]] = track_classes[new]
        self.identity["last_seen"][id_rows] = pts
        self._unique.add(np.zeros(int(new.sum()), np.intp), track_classes[new], len(self.registry))
        rows, _ = self.state.rows(track_ids)
        self.state["class"][rows] = track_classes
        self.state["last_seen"][rows] = pts

        boxes = np.asarray(instances.boxes, np.float64).reshape(-1, 4)
        lines = self._lines.update(self.state, rows, track_ids, track_classes, view.line_ok[local[tracked]],
                                   boxes[tracked], geometry, self.registry)
        zones = self._zones.update(self.state, rows, classes, view.zone_ok[local], boxes, tracked, pts,
                                   geometry, self.registry)
        recent = self.identity["class"][self.identity["last_seen"] >= pts - config.unique_window_s]
        return AnalyticsResult(
            pts=pts,
            counts=instances.counts,
            tracked=self.registry.as_dict(np.bincount(track_classes, minlength=len(self.registry))),
            unique=self.registry.as_dict(self._unique.counts[0]),
            unique_window=self.registry.as_dict(np.bincount(recent, minlength=len(self.registry))),
            lines=lines,
            zones=zones,
            road=self._road(semantic),
            geometry=geometry,
        )

    def _view(self, class_names: tuple[str, ...]) -> _ClassView:
        view = self._views.get(class_names)
        if view is None:
            known = set(class_names)
            for section, entries in (("lines", self.config.lines), ("zones", self.config.zones)):
                for i, entry in enumerate(entries):
                    missing = [c for c in entry.classes or () if c not in known]
                    if missing and class_names:
                        raise EdgeSegError(f"key 'analytics.{section}.{i}.classes': {missing[0]!r} is not a class "
                                           f"of the instance model ({', '.join(class_names)})")
            view = self._views[class_names] = _ClassView(
                self.registry.indices(class_names),
                _filter_table(class_names, self.config.lines),
                _filter_table(class_names, self.config.zones))
        return view

    def _drivable_names(self, classes: tuple[str, ...]) -> tuple[str, ...]:
        names = self._drivable.get(classes)
        if names is None:
            wanted = self.config.road.drivable_classes
            names = tuple(n for n in wanted if n in classes)
            if not names:
                raise EdgeSegError(f"key 'analytics.road.drivable_classes': none of {', '.join(wanted)} is a "
                                   f"class of the semantic model ({', '.join(classes)})")
            self._drivable[classes] = names
        return names

    def _road(self, semantic: SemanticMap | None) -> RoadSummary | None:
        """Drivable fraction from the map's coverage (computed once per map, and read by the sinks too)."""
        if semantic is None or self.config.road is None:
            return None
        coverage = semantic.coverage
        names = self._drivable_names(semantic.classes)
        return RoadSummary(sum(coverage.get(n, 0.0) for n in names), coverage)


def _filter_table(class_names: tuple[str, ...], entries: tuple[LineConfig | ZoneConfig, ...]) -> np.ndarray:
    """(C, E) bool: class c passes entry e's class filter."""
    return np.array([[e.classes is None or name in e.classes for e in entries] for name in class_names],
                    bool).reshape(len(class_names), len(entries))
