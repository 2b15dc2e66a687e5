"""Stage threads: each takes packets from its input queue, does one job, and passes them on.

Every stage runs the same loop (:class:`StageThread`), so counting, timing, end-of-stream and failure
handling are written once:

- end of stream: when the input queue ends, the stage ends its output queue, so ``END`` travels down
  the chain after the last frame and every stage drains what is in flight;
- failure: the stage records a one-line :class:`StageFailure` naming itself, the source and the
  frame, aborts its input queue (upstream stages' puts fail, so they stop) and ends its output queue
  (downstream stages finish what they hold, and the sinks are closed properly).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pipeline.errors import EdgeSegError
from pipeline.modelcard import InputSpec
from pipeline.sources.base import Source
from pipeline.stream.metrics import StageMetrics
from pipeline.stream.queues import END, StageQueue
from pipeline.types import Frame, FrameResult


@dataclass
class Packet:
    """One frame on its way through the stages."""

    frame: Frame
    created: float  # time.perf_counter() when the source delivered it: the start of end-to-end latency
    result: FrameResult
    inputs: dict[InputSpec, np.ndarray] = field(default_factory=dict)  # preprocessed, per input spec
    outputs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # model role -> raw outputs


@dataclass(frozen=True)
class StageFailure:
    stage: str
    source_id: str
    frame: int | None
    message: str

    def __str__(self) -> str:
        where = f" on frame {self.frame}" if self.frame is not None else ""
        return f"stage '{self.stage}' failed{where} of source '{self.source_id}': {self.message}"


class FailureLog:
    """The first failure wins (the others are usually its consequences); setting it stops the pipeline."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.first: StageFailure | None = None
        self._lock = threading.Lock()

    def record(self, failure: StageFailure) -> None:
        with self._lock:
            if self.first is None:
                self.first = failure
        self.stop.set()


def _message(error: BaseException) -> str:
    text = str(error) if isinstance(error, EdgeSegError) else f"{type(error).__name__}: {error}"
    return " ".join(text.split()) or type(error).__name__


class StageThread(threading.Thread):
    """Runs ``work(packet)`` on every packet from ``inbox`` and puts it in ``outbox``. ``finish`` runs when
    the stage ends, whatever the reason (the sink stage closes its sinks there)."""

    def __init__(self, name: str, source_id: str, work: Callable[[Packet], None], inbox: StageQueue,
                 outbox: StageQueue, metrics: StageMetrics, failures: FailureLog,
                 finish: Callable[[], None] | None = None):
        super().__init__(name=f"{name}:{source_id}", daemon=True)
        self.stage, self.source_id = name, source_id
        self.work, self.inbox, self.outbox = work, inbox, outbox
        self.metrics, self.failures, self.finish = metrics, failures, finish

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # noqa: BLE001 - reported as a stage failure, never lost in a thread
            self._fail(None, e)
        finally:
            if self.finish is not None:
                try:
                    self.finish()
                except Exception as e:  # noqa: BLE001
                    self._fail(None, e)

    def _loop(self) -> None:
        while True:
            packet = self.inbox.get()
            if packet is END:
                self.outbox.close()
                return
            self.metrics.received(len(self.inbox))
            start = time.perf_counter()
            try:
                self.work(packet)
            except Exception as e:  # noqa: BLE001
                self._fail(packet.frame.index, e)
                return
            ms = (time.perf_counter() - start) * 1e3
            packet.result.timings_ms[self.stage] = ms
            self.metrics.done(ms)
            if not self.outbox.put(packet):
                self.inbox.abort()
                return

    def _fail(self, frame: int | None, error: BaseException) -> None:
        self.failures.record(StageFailure(self.stage, self.source_id, frame, _message(error)))
        self.inbox.abort()
        self.outbox.close()


class SourceThread(threading.Thread):
    """Reads the source into the first queue until its end, ``max_frames``, or the stop event."""

    def __init__(self, source: Source, outbox: StageQueue, metrics: StageMetrics, failures: FailureLog,
                 stop: threading.Event, max_frames: int | None):
        super().__init__(name=f"source:{source.source_id}", daemon=True)
        self.source, self.outbox, self.metrics = source, outbox, metrics
        self.failures, self.stop, self.max_frames = failures, stop, max_frames

    def run(self) -> None:
        count = 0
        try:
            if self.max_frames == 0:
                return
            start = time.perf_counter()
            for frame in self.source.frames(self.stop):
                now = time.perf_counter()
                self.metrics.received(0)
                self.metrics.done((now - start) * 1e3)  # time to get this frame from the source
                packet = Packet(frame, now, FrameResult(frame))
                if not self.outbox.put(packet):
                    return
                self.metrics.drops = self.outbox.dropped
                count += 1
                if count == self.max_frames or self.stop.is_set():
                    return
                start = time.perf_counter()
        except BaseException as e:  # noqa: BLE001
            frame = count if count else None
            self.failures.record(StageFailure("source", self.source.source_id, frame, _message(e)))
        finally:
            self.outbox.close()
            self.source.close()
