"""Track states, the read-only view callers get, and the table that holds every live track's record.

The table is columnar (one numpy array per field, one row per track, in the Kalman filter's row order):
the association step selects, gates and updates tracks with array operations instead of visiting
track objects one by one. Removed tracks are cut out of every column, so memory follows the live tracks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from pipeline.tracking.matching import MaskCrop


class TrackState(enum.IntEnum):
    TENTATIVE = 0  # seen, not yet confirmed: no id, removed at its first miss
    CONFIRMED = 1  # has an id and was matched at the last update
    LOST = 2  # has an id, missed at least the last update, may come back within lost_timeout_s


@dataclass(frozen=True)
class TrackView:
    """A confirmed track as callers see it; a snapshot, not updated by later calls."""

    id: int
    class_id: int
    score: float  # of the last matched detection
    box: np.ndarray  # (4,) float32 x1 y1 x2 y2: the Kalman box at the last call's pts
    state: TrackState
    first_seen: float  # pts of the first detection
    last_seen: float  # pts of the last matched detection
    mask: np.ndarray | None = None  # bool, the last matched detection's mask cropped to mask_box (read-only)
    mask_box: tuple[int, int, int, int] | None = None  # x1 y1 x2 y2 (ints) where the crop was taken


class TrackTable:
    """Per-track records as columns. ``ids`` is 0 for tentative tracks: ids are handed out at confirmation,
    so the ids callers see are consecutive and never spent on flickering false positives. ``votes`` (T, K)
    sums matched detection scores per class; with class-agnostic matching a track's class is its top vote."""

    def __init__(self, class_agnostic: bool) -> None:
        self.class_agnostic = class_agnostic
        self.ids = np.zeros(0, np.int64)
        self.state = np.zeros(0, np.int8)
        self.class_id = np.zeros(0, np.int32)
        self.votes = np.zeros((0, 1))
        self.hits = np.zeros(0, np.int32)
        self.first_seen = np.zeros(0)
        self.last_seen = np.zeros(0)
        self.score = np.zeros(0, np.float32)
        self.crops: list[MaskCrop | None] = []

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, class_id: np.ndarray, score: np.ndarray, pts: float, crops: list[MaskCrop | None],
            state: TrackState) -> None:
        """Append tracks for new detections, each with one hit."""
        n = len(class_id)
        self._widen_votes(class_id)
        votes = np.zeros((n, self.votes.shape[1]))
        votes[np.arange(n), class_id] = score
        self.ids = np.concatenate([self.ids, np.zeros(n, np.int64)])
        self.state = np.concatenate([self.state, np.full(n, state, np.int8)])
        self.class_id = np.concatenate([self.class_id, class_id.astype(np.int32)])
        self.votes = np.concatenate([self.votes, votes])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int32)])
        self.first_seen = np.concatenate([self.first_seen, np.full(n, pts)])
        self.last_seen = np.concatenate([self.last_seen, np.full(n, pts)])
        self.score = np.concatenate([self.score, score.astype(np.float32)])
        self.crops.extend(crops)

    def hit(self, rows: np.ndarray, class_id: np.ndarray, score: np.ndarray, pts: float) -> None:
        """Record matched detections on tracks ``rows`` (distinct). Votes are counted only when matching is
        class-agnostic: otherwise a detection always has its track's class."""
        if self.class_agnostic:
            self._widen_votes(class_id)
            self.votes[rows, class_id] += score
            self.class_id[rows] = self.votes[rows].argmax(axis=1)
        self.hits[rows] += 1
        self.last_seen[rows] = pts
        self.score[rows] = score

    def keep(self, rows: np.ndarray) -> None:
        """Keep only ``rows`` (indices, ascending): the others are removed, their masks released."""
        self.ids, self.state, self.class_id = self.ids[rows], self.state[rows], self.class_id[rows]
        self.votes, self.hits = self.votes[rows], self.hits[rows]
        self.first_seen, self.last_seen, self.score = self.first_seen[rows], self.last_seen[rows], self.score[rows]
        self.crops = [self.crops[i] for i in rows.tolist()]

    def view(self, row: int, box: np.ndarray) -> TrackView:
        crop = self.crops[row]
        return TrackView(id=int(self.ids[row]), class_id=int(self.class_id[row]), score=float(self.score[row]),
                         box=box, state=TrackState(int(self.state[row])), first_seen=float(self.first_seen[row]),
                         last_seen=float(self.last_seen[row]), mask=None if crop is None else crop.mask,
                         mask_box=None if crop is None else crop.box)

    def _widen_votes(self, class_id: np.ndarray) -> None:
        """Grow the vote columns to cover every class id seen (class ids need not be known in advance)."""
        needed = int(class_id.max(initial=-1)) + 1
        if needed > self.votes.shape[1]:
            self.votes = np.pad(self.votes, ((0, 0), (0, needed - self.votes.shape[1])))
