"""The streaming pipeline: sources -> preprocess -> inference -> decode -> [track] -> [analytics] -> [panoptic]
-> sinks, a thread per stage.

One chain of stage threads per source (they share the loaded models: an ONNX Runtime session may be
run from several threads), all feeding one results queue. ``Pipeline.results()`` yields every
:class:`FrameResult` after the sinks have written it, for users who embed the pipeline in their own
loop; ``Pipeline.run()`` consumes it with a progress bar and handles Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.analytics import Analytics
from pipeline.errors import EdgeSegError
from pipeline.panoptic import PanopticFuser
from pipeline.sinks import JsonlSink, MaskSink, Sink, SinkGroup, VideoSink
from pipeline.sources import open_source
from pipeline.sources.base import Source
from pipeline.stream.config import PipelineConfig, SinksConfig, SourceConfig, load_config
from pipeline.stream.metrics import StageMetrics
from pipeline.stream.models import ModelStep, load_models, preprocessors
from pipeline.stream.queues import END, StageQueue
from pipeline.stream.report import PipelineReport, SourceReport
from pipeline.stream.stages import FailureLog, Packet, SourceThread, StageThread
from pipeline.stream.track_step import TrackStep
from pipeline.types import FrameResult

DEFAULT_FPS = 30.0  # for the video writer when a source does not know its rate


class Pipeline:
    def __init__(self, config: PipelineConfig, where: str = "config"):
        self.config = config
        self.where = where  # the config file, for error messages
        self.stop = threading.Event()
        self.failures = FailureLog(self.stop)
        self.sources: list[Source] = []
        self.stage_metrics: list[tuple[str, StageMetrics]] = []  # (source id, metrics), in chain order
        self.end_to_end = StageMetrics("end_to_end")
        self._threads: list[threading.Thread] = []
        self._queues: list[StageQueue] = []
        self._started: float | None = None
        self._finished: float | None = None
        self._stopped_early = False

    @classmethod
    def from_config(cls, path: str | Path, overrides: list[str] = (), source: str | None = None,
                    out: str | None = None, max_frames: int | None = None) -> Pipeline:
        """A pipeline from a YAML file, with the CLI's overrides applied before validation."""
        overrides = list(overrides)
        if source is not None:
            overrides.insert(0, f"source.uri={source}")
        if out is not None:
            overrides.append(f"out={out}")
        if max_frames is not None:
            overrides.append(f"max_frames={max_frames}")
        return cls(load_config(path, overrides), str(path))

    # -- building -------------------------------------------------------------------------------------

    def _open_sources(self) -> None:
        for cfg in self.config.sources:
            self.sources.append(open_source(cfg.uri, cfg.id, cfg.options()))
        ids = [s.source_id for s in self.sources]
        if len(set(ids)) != len(ids):
            raise EdgeSegError(f"{self.where}: key 'sources': two sources get the same id ({', '.join(ids)}); "
                               f"give each an 'id'")

    def _sinks(self, source: Source, steps: list[ModelStep], sinks: SinksConfig) -> list[Sink]:
        def path(template: str) -> Path:
            return Path(template.format(out=self.config.out, source=source.source_id))

        semantic = next((s.name for s in steps if s.role == "semantic"), "")
        with contextlib.ExitStack() as opened:  # a sink that fails to open closes the ones opened before it
            made: list[Sink] = []
            if sinks.video is not None:
                made.append(opened.enter_context(VideoSink(path(sinks.video.path), source.fps or DEFAULT_FPS,
                                                           crf=sinks.video.crf, alpha=sinks.video.alpha)))
            if sinks.jsonl is not None:
                made.append(opened.enter_context(JsonlSink(path(sinks.jsonl.path), semantic)))
            if sinks.masks is not None:
                made.append(opened.enter_context(MaskSink(path(sinks.masks.dir))))
            opened.pop_all()
        return made

    def _analytics(self, steps: list[ModelStep]) -> Analytics:
        """One source's analytics, its class filters checked against the models now (one-line error at start)."""
        engine = Analytics(self.config.analytics)
        classes = {s.role: tuple(s.loaded.card.classes) for s in steps}
        try:
            engine.check_classes(classes.get("instance"), classes.get("semantic"))
        except EdgeSegError as e:
            raise EdgeSegError(f"{self.where}: {e}") from None
        return engine

    def _chain(self, source: Source, source_cfg: SourceConfig, steps: list[ModelStep], results: StageQueue) -> None:
        """The threads and queues of one source's chain."""
        cfg = self.config
        policy = source_cfg.buffer.policy
        if policy == "auto":
            policy = "drop_oldest" if source.live else "block"
        prep = preprocessors(steps)

        def preprocess(p: Packet) -> None:
            for spec in {step.spec for step in steps if step.runs_on(p.frame.index)}:
                p.inputs[spec] = prep[spec](p.frame.image)

        def infer(p: Packet) -> None:
            for step in steps:
                if step.runs_on(p.frame.index):
                    p.outputs[step.role] = step.session.run(p.inputs[step.spec])
            p.inputs.clear()  # free the tensors as soon as they are used: memory stays flat

        def decode(p: Packet) -> None:
            for step in steps:
                if step.role in p.outputs:
                    step.decode(p.outputs[step.role], p.frame, p.result)
            p.outputs.clear()

        analytics = self._analytics(steps) if cfg.analytics is not None else None  # may fail: before the sinks
        sinks = SinkGroup(self._sinks(source, steps, cfg.sinks)).__enter__()  # left in the sink thread

        def write(p: Packet) -> None:
            sinks.write(p.result)
            self.end_to_end.done((time.perf_counter() - p.created) * 1e3)

        def close_sinks() -> None:
            sinks.__exit__(None, None, None)

        work: list[tuple[str, Callable[[Packet], None], Callable[[], None] | None]] = [
            ("preprocess", preprocess, None), ("inference", infer, None), ("decode", decode, None)]
        instance = next((s for s in steps if s.role == "instance"), None)
        if instance is not None and cfg.tracker is not None:
            track = TrackStep(cfg.tracker, instance.loaded.card.classes)
            work.append(("track", lambda p: track(p.result), None))
        if analytics is not None:

            def analyse(p: Packet) -> None:
                r = p.result
                r.analytics = analytics.update(r.frame.size, r.frame.pts, r.instances, r.semantic)

            work.append(("analytics", analyse, None))
        if cfg.panoptic is not None:
            fuse = PanopticFuser(cfg.panoptic)

            def panoptic(p: Packet) -> None:
                p.result.panoptic = fuse(p.result.semantic, p.result.instances)

            work.append(("panoptic", panoptic, None))
        work.append(("sinks", write, close_sinks))
        inbox: StageQueue = StageQueue(source_cfg.buffer.size, policy)
        source_metrics = StageMetrics("source")
        self.stage_metrics.append((source.source_id, source_metrics))
        self._queues.append(inbox)
        self._threads.append(SourceThread(source, inbox, source_metrics, self.failures, self.stop, cfg.max_frames))
        for i, (name, fn, finish) in enumerate(work):
            outbox = results if i == len(work) - 1 else StageQueue(cfg.queue_size)
            metrics = StageMetrics(name)
            self.stage_metrics.append((source.source_id, metrics))
            self._queues.append(outbox)
            self._threads.append(StageThread(name, source.source_id, fn, inbox, outbox, metrics, self.failures,
                                             finish))
            inbox = outbox

    def _start(self) -> StageQueue:
        if self._started is not None:
            raise RuntimeError("a Pipeline runs once; build a new one to run again")
        try:
            self._open_sources()
            steps = load_models(self.config.models, self.where)
            results: StageQueue = StageQueue(self.config.queue_size * len(self.sources),
                                             producers=len(self.sources))
            for source, source_cfg in zip(self.sources, self.config.sources):
                self._chain(source, source_cfg, steps, results)
        except EdgeSegError:  # nothing runs yet: close what was opened (a later source's sink may have failed)
            for thread in self._threads:
                if isinstance(thread, StageThread) and thread.finish is not None:
                    thread.finish()
            for source in self.sources:
                source.close()
            raise
        self._started = time.perf_counter()
        for thread in self._threads:
            thread.start()
        return results

    # -- running --------------------------------------------------------------------------------------

    def results(self) -> Iterator[FrameResult]:
        """Every frame's result, in order per source, once the sinks have written it. Leaving the loop
        early (``break``) stops the sources and drains what is in flight, so the sinks still get it."""
        results = self._start()
        completed = False
        try:
            while (packet := results.get()) is not END:
                yield packet.result
            completed = True
        finally:
            self._stopped_early = self.stop.is_set() or not completed  # a signal, a failure or a `break`
            self.stop.set()
            while results.get() is not END:  # drain: the sinks write the frames already captured
                pass
            for thread in self._threads:
                thread.join()
            self._finished = time.perf_counter()
        if completed and self.failures.first is not None:
            raise EdgeSegError(str(self.failures.first))

    def abort(self) -> None:
        """Stop without draining (a second Ctrl-C): queued frames are dropped; sinks still close."""
        self.stop.set()
        for queue in self._queues:
            queue.abort()

    def total_frames(self) -> int | None:
        """Frames the run will deliver, when every source knows its length (for the progress bar)."""
        lengths = [s.length for s in self.sources]
        if any(n is None for n in lengths):
            return None if self.config.max_frames is None else self.config.max_frames * len(lengths)
        cap = self.config.max_frames
        return sum(min(n, cap) if cap else n for n in lengths)

    def run(self, on_result: Callable[[FrameResult], None] | None = None) -> PipelineReport:
        """Run to the end of every source (or Ctrl-C / SIGTERM: stop, drain, close the sinks) and return
        the report. A failing stage raises a one-line EdgeSegError after the sinks are closed."""
        with _StopOnSignals(self):
            for result in self.results():
                if on_result is not None:
                    on_result(result)
        return self.report()

    def report(self) -> PipelineReport:
        end = self._finished or time.perf_counter()
        wall = end - self._started if self._started else 0.0
        drops = {sid: m.drops for sid, m in self.stage_metrics if m.name == "source"}
        sources = [SourceReport(s.source_id, s.uri, s.stats.frames, s.stats.reconnects, list(s.stats.gaps),
                                drops.get(s.source_id, 0)) for s in self.sources]
        return PipelineReport(
            sources=sources, stages=[(sid, m.snapshot()) for sid, m in self.stage_metrics],
            end_to_end=self.end_to_end.snapshot(), frames=self.end_to_end.frames_out, wall_s=wall,
            stopped_early=self._stopped_early and self.failures.first is None,
            error=str(self.failures.first) if self.failures.first else None)


class _StopOnSignals:
    """While running in the main thread: the first SIGINT/SIGTERM stops the sources and lets the pipeline
    drain; a second one aborts (drops queued frames). Sinks are closed either way."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, _frame: object) -> None:
        if self.pipeline.stop.is_set():
            self.pipeline.abort()
        self.pipeline.stop.set()

    def __enter__(self) -> _StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
