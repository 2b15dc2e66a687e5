"""What a run reports: per-source counters, per-stage metrics, end-to-end latency; as a rich table for
people and as JSON (``--metrics-json``) for machines."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipeline.errors import EdgeSegError
from pipeline.sources.base import Gap
from pipeline.stream.metrics import StageSnapshot


@dataclass
class SourceReport:
    source_id: str
    uri: str
    frames: int  # frames the source delivered
    reconnects: int
    gaps: list[Gap]
    drops: int  # frames dropped by the live-source buffer (drop_oldest)


@dataclass
class PipelineReport:
    sources: list[SourceReport]
    stages: list[tuple[str, StageSnapshot]]  # (source id, stage), in chain order
    end_to_end: StageSnapshot  # source delivery -> sinks written, over all sources
    frames: int  # frames that reached the sinks
    wall_s: float
    stopped_early: bool  # Ctrl-C, SIGTERM or a caller's break
    error: str | None

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def to_json(self) -> dict:
        e2e = self.end_to_end
        return {
            "frames": self.frames, "wall_s": round(self.wall_s, 3), "fps": round(self.fps, 2),
            "latency_ms_p50": e2e.latency_ms_p50, "latency_ms_p95": e2e.latency_ms_p95,
            "latency_ms_p99": e2e.latency_ms_p99, "stopped_early": self.stopped_early, "error": self.error,
            "sources": [asdict(s) for s in self.sources],
            "stages": [{"source_id": sid, **asdict(snap)} for sid, snap in self.stages],
        }

    def write_json(self, path: str | Path) -> None:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        except OSError as e:
            raise EdgeSegError(f"{path}: cannot write metrics: {e.strerror}") from None

    def print(self, console: Console) -> None:
        table = Table(title=f"{self.frames} frames in {self.wall_s:.1f} s ({self.fps:.1f} fps); latency in ms",
                      title_justify="left")
        for column in ("source", "stage", "in", "out", "drop", "q max", "p50", "p95", "p99", "fps"):
            table.add_column(column, justify="left" if column in ("source", "stage") else "right", no_wrap=True)
        several = len(self.sources) > 1
        for sid, snap in self.stages:
            table.add_row(sid if several or snap.name == "source" else "", snap.name, str(snap.frames_in),
                          str(snap.frames_out), str(snap.drops) if snap.name == "source" else "",
                          str(snap.queue_depth_max) if snap.name != "source" else "",
                          *(_ms(v) for v in (snap.latency_ms_p50, snap.latency_ms_p95, snap.latency_ms_p99)),
                          f"{snap.fps:.1f}" if snap.fps else "-")
        e2e = self.end_to_end
        table.add_row("all", "end-to-end", "", str(e2e.frames_out), "", "",
                      *(_ms(v) for v in (e2e.latency_ms_p50, e2e.latency_ms_p95, e2e.latency_ms_p99)),
                      f"{self.fps:.1f}")
        console.print(table)
        for s in self.sources:
            if s.reconnects or s.drops:
                lost = sum(g.seconds for g in s.gaps)
                console.print(f"{s.source_id}: {s.reconnects} reconnects ({lost:.1f} s without frames), "
                              f"{s.drops} frames dropped to keep latency bounded")
        if self.stopped_early:
            console.print("stopped early: in-flight frames were drained and every sink closed")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
