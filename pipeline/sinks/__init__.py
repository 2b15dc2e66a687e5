"""Sinks: where per-frame results go. Each is a context manager with ``write(result: FrameResult)``;
leaving the ``with`` block (normally, or through an exception) closes its files in a valid state."""

from __future__ import annotations

from typing import Protocol

from pipeline.sinks.jsonl import JsonlSink
from pipeline.sinks.masks import MaskSink, write_palette_png
from pipeline.sinks.video import VideoSink
from pipeline.types import FrameResult


class Sink(Protocol):
    def write(self, result: FrameResult) -> None: ...

    def __enter__(self) -> Sink: ...

    def __exit__(self, *exc: object) -> None: ...


__all__ = ["JsonlSink", "MaskSink", "Sink", "VideoSink", "write_palette_png"]
