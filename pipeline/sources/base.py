"""What every source gives the pipeline: frames with presentation timestamps, and what it knows of itself.

A source is opened from a URI (:func:`pipeline.sources.open_source`) and iterated once by the
pipeline's source thread. It stops early when the ``stop`` event is set (Ctrl-C, SIGTERM, an error
downstream), so waits inside a source (an RTSP reconnect back-off, a camera read) use ``stop.wait``
rather than ``time.sleep``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pipeline.types import Frame


@dataclass(frozen=True)
class Gap:
    """A stretch of a live stream with no frames: the connection dropped and was reopened."""

    after_frame: int  # index of the last frame before the gap (-1: before the first frame)
    seconds: float  # wall-clock time without frames
    attempts: int  # reconnect attempts it took
    reason: str  # why the stream was lost, one line


@dataclass
class SourceStats:
    """Counters a source keeps while it runs; the pipeline's metrics and summary report them."""

    frames: int = 0
    reconnects: int = 0
    gaps: list[Gap] = field(default_factory=list)


@dataclass(frozen=True)
class SourceOptions:
    """Per-source settings from the pipeline config (``source:`` section), with their defaults."""

    backend: Literal["auto", "pyav", "opencv", "gstreamer"] = "auto"
    fps: float | None = None  # image folders: the rate that gives their pts (default 30); others: ignored
    loop: bool = False  # files, folders, synth: start again at the end (soak tests, demos on a screen)
    reconnect_initial_s: float = 0.5  # live sources: first back-off delay after a lost stream
    reconnect_max_s: float = 10.0  # back-off doubles up to this
    reconnect_attempts: int = 0  # 0: keep trying until stopped
    open_timeout_s: float = 5.0  # network sources: give up one connection attempt after this


class Source(Protocol):
    uri: str  # as the user gave it
    source_id: str  # tags every Frame and output file name
    live: bool  # camera or network stream: frames arrive in real time and old ones may be dropped
    length: int | None  # frames, when known in advance (files, folders, synth): drives the progress bar
    fps: float | None  # nominal frame rate when known (for writers); time itself comes from Frame.pts
    stats: SourceStats

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """Yield frames in order until the end of the input or until ``stop`` is set. Problems with the
        input raise :class:`pipeline.errors.EdgeSegError` with one line naming the URI (and frame)."""
        ...

    def close(self) -> None:
        """Release the device, file or connection; safe to call twice."""
        ...
