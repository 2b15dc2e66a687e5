"""Directional line crossing with hysteresis, for all tracks and all lines at once.

Each (track, line) pair has a side: +1 (the "in" side, right of A -> B), -1, or 0 (not known yet), and
the anchor position where the track was last firmly on that side. Firmly means farther than the line's
hysteresis from the infinite line through A and B; inside that band the side does not change, so a box
jittering on the line never flips it, however long it stays there. A crossing is a flip from one firm
side to the other; it counts when the path from the last firm position to the new one meets the line
within the segment from A to B (a track walking round the end of the segment changes side without
counting). So a track that goes out and comes back counts once each way, and its first sighting only
sets its side (an object that appears on a side did not cross to it while we watched).
"""

from __future__ import annotations

import numpy as np

from pipeline.analytics.classes import ClassRegistry, Tally
from pipeline.analytics.config import AnalyticsConfig
from pipeline.analytics.geometry import FrameGeometry, anchor_points
from pipeline.analytics.result import Crossing, LineResult
from pipeline.analytics.table import Column, TrackTable


class LineCounter:
    def __init__(self, config: AnalyticsConfig):
        self.names = tuple(line.name for line in config.lines)
        n = len(self.names)
        self.columns = {"line_side": Column((n,), np.int8, 0), "line_firm": Column((n, 2), np.float64, np.nan)}
        self.counts_in = Tally(n)
        self.counts_out = Tally(n)

    def update(self, table: TrackTable, rows: np.ndarray, ids: np.ndarray, classes: np.ndarray,
               eligible: np.ndarray, boxes: np.ndarray, geometry: FrameGeometry,
               registry: ClassRegistry) -> tuple[LineResult, ...]:
        """Advance the lines' state with a frame's tracked objects: their table ``rows``, track ``ids``,
        engine-wide ``classes``, ``eligible`` (N, L) (class filters) and ``boxes`` (N, 4)."""
        events: list[list[Crossing]] = [[] for _ in self.names]
        if len(rows) and self.names:
            anchors = anchor_points(boxes, geometry.line_anchor)  # (N, L, 2)
            normal = geometry.line_normal
            distance = np.einsum("nlk,lk->nl", anchors - geometry.line_a, normal)  # signed, pixels
            band = geometry.line_hysteresis
            side_now = np.where(distance > band, 1, np.where(distance < -band, -1, 0)).astype(np.int8)
            side_now[~eligible] = 0
            side = table["line_side"][rows]
            firm = table["line_firm"][rows]
            n_idx, l_idx = np.nonzero((side_now != 0) & (side != 0) & (side_now != side))
            if n_idx.size:
                start, end = firm[n_idx, l_idx], anchors[n_idx, l_idx]
                d_start = np.einsum("ik,ik->i", start - geometry.line_a[l_idx], normal[l_idx])
                d_end = distance[n_idx, l_idx]
                # where the path crosses the line, as a fraction of the segment from A to B
                meet = start + (d_start / (d_start - d_end))[:, None] * (end - start)
                direction = geometry.line_direction[l_idx]
                t = np.einsum("ik,ik->i", meet - geometry.line_a[l_idx], direction) / np.einsum(
                    "ik,ik->i", direction, direction)
                counted = (t >= 0) & (t <= 1)
                n_idx, l_idx = n_idx[counted], l_idx[counted]
                inward = side_now[n_idx, l_idx] > 0
                self.counts_in.add(l_idx[inward], classes[n_idx[inward]], len(registry))
                self.counts_out.add(l_idx[~inward], classes[n_idx[~inward]], len(registry))
                for n, line, is_in in zip(n_idx.tolist(), l_idx.tolist(), inward.tolist()):
                    events[line].append(Crossing(int(ids[n]), registry.names[classes[n]], "in" if is_in else "out"))
            moved = side_now != 0
            table["line_side"][rows] = np.where(moved, side_now, side)
            table["line_firm"][rows] = np.where(moved[..., None], anchors, firm)
        ins, outs = self.counts_in.as_dicts(registry), self.counts_out.as_dicts(registry)
        return tuple(LineResult(name, ins[i], outs[i], tuple(events[i])) for i, name in enumerate(self.names))
