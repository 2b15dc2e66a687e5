"""Per-track state in columns, one row per recently seen track id.

Track ids grow without bound over a run (a tracker never reuses them), so state cannot live in arrays
indexed by id. Rows are kept sorted by id instead: a frame's ids find their rows in one
``np.searchsorted``, new ids are inserted in one ``np.insert`` per column, and rows of tracks not seen
for a while are dropped in one compress. Every column is a numpy array whose first axis is the row, so
the per-frame work over all of a frame's objects and all lines or zones is a handful of array operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Column:
    shape: tuple[int, ...]  # per row
    dtype: type
    default: float | int | bool


class TrackTable:
    """Rows of state for the ids seen within a horizon; ``last_seen`` (pts, seconds) is always a column."""

    def __init__(self, columns: dict[str, Column]):
        self.specs = {"last_seen": Column((), np.float64, -np.inf), **columns}
        self.ids = np.zeros(0, np.int64)
        self.columns = {name: np.full((0, *c.shape), c.default, c.dtype) for name, c in self.specs.items()}

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows of ``ids``, which of them were new), inserting rows with the columns' defaults for ids not
        in the table. ``ids`` should be distinct (as one frame's track ids are)."""
        ids = np.asarray(ids, np.int64)
        pos = np.searchsorted(self.ids, ids)
        found = self.ids[np.minimum(pos, len(self.ids) - 1)] == ids if len(self.ids) else np.zeros(len(ids), bool)
        if found.all():
            return pos, ~found
        new_ids = np.unique(ids[~found])
        at = np.searchsorted(self.ids, new_ids)
        self.ids = np.insert(self.ids, at, new_ids)
        for name, c in self.specs.items():
            self.columns[name] = np.insert(self.columns[name], at, c.default, axis=0)
        return np.searchsorted(self.ids, ids), ~found

    def stale(self, before: float) -> np.ndarray:
        """Bool per row: last seen before ``before`` (pts, seconds)."""
        return self.columns["last_seen"] < before

    def drop(self, rows: np.ndarray) -> None:
        """Remove the rows where ``rows`` (bool per row) is true."""
        if rows.any():
            keep = ~rows
            self.ids = self.ids[keep]
            self.columns = {name: col[keep] for name, col in self.columns.items()}

    def reset(self, names: tuple[str, ...]) -> None:
        """Set the named columns of every row back to their defaults."""
        for name in names:
            self.columns[name][...] = self.specs[name].default
