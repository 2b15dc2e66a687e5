"""Polygon zones: occupancy per class, and per track its stays (entries, dwell time, exits).

Occupancy counts every detection whose anchor is inside, tracked or not: it needs no identity, and a
zone is as useful without a tracker. Stays need identity, so only tracks (id >= 0) have them. A stay
starts when a track is seen inside (also at its first sighting: it entered unseen) and ends when the
track is seen outside the zone by more than the zone's hysteresis, so a box jittering on the boundary
neither ends nor restarts its stay; a stay also ends when its track is forgotten (not seen for
``forget_after_s``). Dwell is the time, from pts, between the stay's first and last frames: frames where
the track is not seen at all do not end a stay.
"""

from __future__ import annotations

import numpy as np

from pipeline.analytics.classes import ClassRegistry, Tally
from pipeline.analytics.config import AnalyticsConfig
from pipeline.analytics.geometry import FrameGeometry, anchor_points
from pipeline.analytics.result import Stay, ZoneResult
from pipeline.analytics.table import Column, TrackTable


class ZoneMonitor:
    def __init__(self, config: AnalyticsConfig):
        self.names = tuple(zone.name for zone in config.zones)
        n = len(self.names)
        self.columns = {
            "zone_inside": Column((n,), bool, False),
            "zone_entered": Column((n,), np.float64, np.nan),  # pts of the stay's first frame
            "zone_last_inside": Column((n,), np.float64, np.nan),  # pts of its last frame so far
        }
        self.entries = Tally(n)
        self._forgotten: list[list[Stay]] = [[] for _ in self.names]

    def forget(self, table: TrackTable, rows: np.ndarray, registry: ClassRegistry) -> None:
        """End the stays of the ``rows`` (bool per row) about to be dropped; reported with the next update.
        The table's ``class`` column (engine-wide index) names their class."""
        r_idx, z_idx = np.nonzero(table["zone_inside"] & rows[:, None])
        dwell = table["zone_last_inside"][r_idx, z_idx] - table["zone_entered"][r_idx, z_idx]
        for r, z, d in zip(r_idx.tolist(), z_idx.tolist(), dwell.tolist()):
            self._forgotten[z].append(Stay(int(table.ids[r]), registry.names[table["class"][r]], d))

    def update(self, table: TrackTable, rows: np.ndarray, classes: np.ndarray, eligible: np.ndarray,
               boxes: np.ndarray, tracked: np.ndarray, pts: float, geometry: FrameGeometry,
               registry: ClassRegistry) -> tuple[ZoneResult, ...]:
        """Advance the zones with a frame's objects: all of them (engine-wide ``classes`` (N,), ``eligible``
        (N, Z) from class filters, ``boxes`` (N, 4)), of which the ``tracked`` (N,) bool ones have table
        ``rows`` (one per tracked object, in order)."""
        n_zones = len(self.names)
        occupancy = np.zeros((n_zones, len(registry)), np.int64)
        inside_now: list[list[Stay]] = [[] for _ in self.names]
        exits, self._forgotten = self._forgotten, [[] for _ in self.names]
        if len(boxes) and n_zones:
            anchors = anchor_points(boxes, geometry.zone_anchor)  # (N, Z, 2)
            inner, outer = geometry.in_zones(anchors)
            inner &= eligible
            n_idx, z_idx = np.nonzero(inner)
            np.add.at(occupancy, (z_idx, classes[n_idx]), 1)
            if len(rows):
                was = table["zone_inside"][rows]
                now = np.where(was, outer[tracked] & eligible[tracked], inner[tracked])
                entered = table["zone_entered"][rows]
                last = table["zone_last_inside"][rows]
                t_classes = classes[tracked]
                r_idx, z_idx = np.nonzero(was & ~now)  # stays that ended
                for r, z, d in zip(r_idx.tolist(), z_idx.tolist(), (last - entered)[r_idx, z_idx].tolist()):
                    exits[z].append(Stay(int(table.ids[rows[r]]), registry.names[t_classes[r]], d))
                started = now & ~was
                r_idx, z_idx = np.nonzero(started)
                self.entries.add(z_idx, t_classes[r_idx], len(registry))
                entered = np.where(started, pts, entered)
                last = np.where(now, pts, last)
                table["zone_inside"][rows] = now
                table["zone_entered"][rows] = entered
                table["zone_last_inside"][rows] = last
                r_idx, z_idx = np.nonzero(now)
                for r, z, d in zip(r_idx.tolist(), z_idx.tolist(), (last - entered)[r_idx, z_idx].tolist()):
                    inside_now[z].append(Stay(int(table.ids[rows[r]]), registry.names[t_classes[r]], d))
        entries = self.entries.as_dicts(registry)
        return tuple(ZoneResult(name, registry.as_dict(occupancy[z]), entries[z], tuple(inside_now[z]),
                                tuple(exits[z])) for z, name in enumerate(self.names))
