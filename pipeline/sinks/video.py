"""Annotated H.264 mp4: each frame is drawn on by the annotators, then encoded by H264Writer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.annotate import Annotator, InfoOverlay, SemanticAnnotator
from pipeline.io.video_writer import H264Writer
from pipeline.types import FrameResult


class VideoSink:
    """The encoder opens on the first frame, at that frame's size, so callers need not know the source's
    size in advance. The source frame is copied before drawing: other sinks may still read it."""

    def __init__(self, path: str | Path, fps: float, annotators: Sequence[Annotator] | None = None,
                 crf: int = 23):
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self.annotators = list(annotators) if annotators is not None else [SemanticAnnotator(), InfoOverlay()]
        self._writer: H264Writer | None = None

    def write(self, result: FrameResult) -> None:
        scene = result.frame.image.copy()
        for annotator in self.annotators:
            scene = annotator.annotate(scene, result)
        if self._writer is None:
            self._writer = H264Writer(self.path, self.fps, result.frame.size, crf=self.crf)
        self._writer.write(scene)

    @property
    def frames_written(self) -> int:
        return self._writer.frames_written if self._writer else 0

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
