"""Class names as indices: one index space per engine, and cumulative counts per (entry, class) over it.

Instances carry class indices into their own ``class_names``; counts that outlive a frame are kept over
an engine-wide index instead (a source's instances normally share one tuple, but predicted and detected
instances, or a model swap, need not), so that they are numpy arrays and per-frame updates are vectorised.
"""

from __future__ import annotations

import numpy as np


class ClassRegistry:
    def __init__(self) -> None:
        self.names: list[str] = []
        self._index: dict[str, int] = {}
        self._maps: dict[tuple[str, ...], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.names)

    def indices(self, class_names: tuple[str, ...]) -> np.ndarray:
        """(C,) int64: the engine-wide index of each of ``class_names`` (registered on first sight)."""
        mapping = self._maps.get(class_names)
        if mapping is None:
            for name in class_names:
                if name not in self._index:
                    self._index[name] = len(self.names)
                    self.names.append(name)
            mapping = self._maps[class_names] = np.array([self._index[n] for n in class_names], np.int64)
        return mapping

    def as_dict(self, counts: np.ndarray) -> dict[str, int]:
        """Class name -> count for the non-zero entries of ``counts`` (indexed engine-wide)."""
        return {self.names[i]: n for i, n in enumerate(counts.tolist()) if n}


class Tally:
    """Cumulative counts per (entry, class): entries are lines, zones, or one row for a whole-run count."""

    def __init__(self, entries: int):
        self.counts = np.zeros((entries, 0), np.int64)

    def add(self, entries: np.ndarray, classes: np.ndarray, num_classes: int) -> None:
        """One count for each pair ``(entries[i], classes[i])``."""
        if self.counts.shape[1] < num_classes:
            self.counts = np.pad(self.counts, ((0, 0), (0, num_classes - self.counts.shape[1])))
        np.add.at(self.counts, (entries, classes), 1)

    def as_dicts(self, registry: ClassRegistry) -> list[dict[str, int]]:
        return [registry.as_dict(row) for row in self.counts]
