"""Sinks: where per-frame results go. Each is a context manager with ``write(result: FrameResult)``;
leaving the ``with`` block (normally, or through an exception) closes its files in a valid state.
:class:`SinkGroup` composes several into one sink."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from typing import Protocol

from pipeline.sinks.jsonl import JsonlSink
from pipeline.sinks.masks import MaskSink, write_palette_png
from pipeline.sinks.video import VideoSink
from pipeline.types import FrameResult


class Sink(Protocol):
    def write(self, result: FrameResult) -> None: ...

    def __enter__(self) -> Sink: ...

    def __exit__(self, *exc: object) -> None: ...


class SinkGroup:
    """Several sinks as one: ``write`` gives each the result in order, and leaving the ``with`` block
    closes every one of them (in reverse order), even when an earlier one fails to close, so one broken
    output never leaves the others unfinalised."""

    def __init__(self, sinks: Iterable[Sink]):
        self.sinks = list(sinks)
        self._stack = ExitStack()

    def write(self, result: FrameResult) -> None:
        for sink in self.sinks:
            sink.write(result)

    def __enter__(self) -> SinkGroup:
        with ExitStack() as stack:  # a sink whose __enter__ raises closes the ones entered before it
            for sink in self.sinks:
                stack.enter_context(sink)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.__exit__(*exc)


__all__ = ["JsonlSink", "MaskSink", "Sink", "SinkGroup", "VideoSink", "write_palette_png"]
