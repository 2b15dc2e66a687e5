"""One JSON object per frame, one line each (JSON Lines), flushed as written.

Flushing every line means a run that is killed loses at most the frame being written, and a
consumer can ``tail -f`` the file live. Schema of each line (keys always present unless noted):

    source_id   str    the Frame's source_id
    frame       int    0-based frame index in its source
    pts         float  presentation time, seconds
    width       int    frame width in pixels
    height      int    frame height in pixels
    model       str    name of the semantic model (its card's name)
    coverage    object class name -> fraction of the frame's pixels (0..1, 6 decimals); classes with
                       no pixels are omitted; {} when the frame has no semantic result
    timings_ms  object stage name -> milliseconds spent on this frame (may be {})
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.errors import EdgeSegError
from pipeline.types import FrameResult

SCHEMA_KEYS = ("source_id", "frame", "pts", "width", "height", "model", "coverage", "timings_ms")


def record(result: FrameResult, model: str) -> dict:
    """The JSON object for one frame (see the module docstring)."""
    frame = result.frame
    coverage = result.semantic.coverage if result.semantic is not None else {}
    return {
        "source_id": frame.source_id,
        "frame": frame.index,
        "pts": round(frame.pts, 6),
        "width": frame.size[0],
        "height": frame.size[1],
        "model": model,
        "coverage": {name: round(share, 6) for name, share in coverage.items()},
        "timings_ms": {stage: round(ms, 3) for stage, ms in result.timings_ms.items()},
    }


class JsonlSink:
    def __init__(self, path: str | Path, model: str):
        self.path = Path(path)
        self.model = model
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
        except OSError as e:
            raise EdgeSegError(f"{self.path}: cannot open for writing: {e.strerror}") from None

    def write(self, result: FrameResult) -> None:
        self._file.write(json.dumps(record(result, self.model), separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
