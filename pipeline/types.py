"""The dataclasses that stages exchange.

Conventions, fixed for every stage:
- images are HxWx3 uint8 in BGR order (what OpenCV, PyAV's ``bgr24`` and most cameras give);
- label maps are HxW uint8 class indices into the producing model's class list;
- boxes are float32 ``x1, y1, x2, y2`` in pixels of the frame;
- time is seconds, taken from the source's presentation timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # analytics builds on these types; only the annotation refers back
    from pipeline.analytics import AnalyticsResult


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # HxWx3 uint8 BGR
    index: int  # 0-based position in its source
    pts: float  # presentation time in seconds
    source_id: str = "0"

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return self.image.shape[1], self.image.shape[0]


@dataclass(frozen=True)
class SemanticMap:
    labels: np.ndarray  # HxW uint8, indices into ``classes``
    classes: tuple[str, ...]
    palette: np.ndarray  # Kx3 uint8 RGB, one row per class
    confidence: np.ndarray | None = None  # HxW float32 max softmax probability, when the model gives logits

    @cached_property
    def coverage(self) -> dict[str, float]:
        """Fraction of the frame's pixels per class (classes with no pixels omitted). Computed once per map:
        the overlay and the JSON-lines sink both read it every frame."""
        counts = np.bincount(self.labels.ravel(), minlength=len(self.classes))[: len(self.classes)]
        total = self.labels.size
        return {name: float(c) / total for name, c in zip(self.classes, counts) if c}


@dataclass(frozen=True)
class Instances:
    classes: np.ndarray  # (N,) int32, indices into ``class_names``
    scores: np.ndarray  # (N,) float32
    boxes: np.ndarray  # (N, 4) float32 x1 y1 x2 y2
    masks: np.ndarray  # (N, H, W) bool
    class_names: tuple[str, ...]
    track_ids: np.ndarray | None = None  # (N,) int64 once a tracker has run

    def __len__(self) -> int:
        return len(self.classes)

    @cached_property
    def counts(self) -> dict[str, int]:
        """Class name -> number of instances, in class-index order; classes with none omitted. Computed
        once per frame: the overlay and the JSON-lines sink both read it."""
        tally = np.bincount(self.classes, minlength=len(self.class_names))
        return {self.class_names[c]: int(tally[c]) for c in np.flatnonzero(tally)}

    @classmethod
    def empty(cls, height: int, width: int, class_names: tuple[str, ...]) -> Instances:
        return cls(
            classes=np.zeros(0, np.int32),
            scores=np.zeros(0, np.float32),
            boxes=np.zeros((0, 4), np.float32),
            masks=np.zeros((0, height, width), bool),
            class_names=class_names,
        )


@dataclass(frozen=True)
class PanopticSegment:
    """One segment of a :class:`PanopticMap`: a stuff region (all pixels of one stuff class) or one object."""

    id: int  # the value of its pixels in ``PanopticMap.ids``
    category: int  # index into ``PanopticMap.classes``
    isthing: bool
    area: int  # pixels
    track_id: int | None = None  # the object's track id, for things once a tracker has run


@dataclass(frozen=True)
class PanopticMap:
    """Every pixel exactly one (class, instance): ``ids`` holds segment ids, 0 = void (no segment). How ids
    are formed and why is in :mod:`pipeline.panoptic`; readers need only ``segments`` to interpret them."""

    ids: np.ndarray  # HxW int32, 0 = void
    segments: tuple[PanopticSegment, ...]  # ascending id, each with at least one pixel
    classes: tuple[str, ...]  # the panoptic label set's class names
    palette: np.ndarray  # Kx3 uint8 RGB, one row per class


@dataclass
class FrameResult:
    """Everything the pipeline knows about one frame; sinks read only this."""

    frame: Frame
    semantic: SemanticMap | None = None
    instances: Instances | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)  # stage name -> milliseconds
    panoptic: PanopticMap | None = None
    analytics: AnalyticsResult | None = None
