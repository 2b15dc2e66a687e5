"""Per-stage counters and latency percentiles, in constant memory.

A pipeline that runs for days cannot keep every latency sample, so latencies go into a fixed
histogram with logarithmic bins (1.5 % wide, from 10 us to 1000 s): percentiles read from it are
within one bin width of the exact value, and memory stays flat however long the run.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np

_LO_MS, _HI_MS, _GROWTH = 0.01, 1e6, 1.015
_BINS = int(math.ceil(math.log(_HI_MS / _LO_MS) / math.log(_GROWTH))) + 1
_LOG_GROWTH = math.log(_GROWTH)


class LatencyHistogram:
    def __init__(self) -> None:
        self.counts = np.zeros(_BINS, np.int64)
        self.total = 0

    def add(self, ms: float) -> None:
        i = 0 if ms <= _LO_MS else min(_BINS - 1, int(math.log(ms / _LO_MS) / _LOG_GROWTH) + 1)
        self.counts[i] += 1
        self.total += 1

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0..100) in ms, as the geometric centre of its bin; None when empty."""
        if not self.total:
            return None
        rank = max(1, math.ceil(q / 100.0 * self.total))
        i = int(np.searchsorted(np.cumsum(self.counts), rank))
        return _LO_MS if i == 0 else _LO_MS * _GROWTH ** (i - 0.5)


@dataclass
class StageSnapshot:
    name: str
    frames_in: int
    frames_out: int
    drops: int
    queue_depth: int  # items waiting in the stage's input queue now
    queue_depth_max: int
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    latency_ms_p99: float | None
    fps: float | None  # frames out per second of wall time since the stage's first frame


class StageMetrics:
    """Written by one stage thread, read by the progress display and the summary."""

    def __init__(self, name: str):
        self.name = name
        self.frames_in = 0
        self.frames_out = 0
        self.drops = 0
        self.queue_depth = 0
        self.queue_depth_max = 0
        self.latency = LatencyHistogram()
        self._first: float | None = None
        self._last: float | None = None
        self._lock = threading.Lock()

    def received(self, queue_depth: int) -> None:
        now = time.perf_counter()
        with self._lock:
            self.frames_in += 1
            self.queue_depth = queue_depth
            self.queue_depth_max = max(self.queue_depth_max, queue_depth)
            if self._first is None:
                self._first = now

    def done(self, ms: float) -> None:
        with self._lock:
            self.frames_out += 1
            self.latency.add(ms)
            self._last = time.perf_counter()

    def snapshot(self) -> StageSnapshot:
        with self._lock:
            span = (self._last - self._first) if self._first is not None and self._last is not None else 0.0
            return StageSnapshot(
                name=self.name, frames_in=self.frames_in, frames_out=self.frames_out, drops=self.drops,
                queue_depth=self.queue_depth, queue_depth_max=self.queue_depth_max,
                latency_ms_p50=self.latency.percentile(50), latency_ms_p95=self.latency.percentile(95),
                latency_ms_p99=self.latency.percentile(99),
                fps=(self.frames_out - 1) / span if span > 0 and self.frames_out > 1 else None)
