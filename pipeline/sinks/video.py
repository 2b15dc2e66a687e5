"""Annotated mp4: each frame is drawn on by the annotators, then encoded (H.264, or mp4v where PyAV has no
libx264; see :func:`pipeline.io.video_writer.open_video_writer`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.analytics.annotate import LineZoneAnnotator
from pipeline.annotate import Annotator, InfoOverlay, InstanceAnnotator, SemanticAnnotator
from pipeline.io.video_writer import VideoWriter, open_video_writer
from pipeline.types import FrameResult


class VideoSink:
    """The encoder opens on the first frame, at that frame's size, so callers need not know the source's
    size in advance. The source frame is copied before drawing: other sinks may still read it.

    Default annotators: the semantic palette blend, instance outlines and labels (with track ids), the
    analytics' lines and zones, then the info panel (drawn last so nothing covers it). Leaving the ``with`` block, through an exception too, finalises
    the mp4 with every frame written so far."""

    def __init__(self, path: str | Path, fps: float, annotators: Sequence[Annotator] | None = None,
                 crf: int = 23, alpha: float = 0.5):
        """``alpha``: how strongly the default semantic blend colours the scene."""
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self.annotators = (list(annotators) if annotators is not None
                           else [SemanticAnnotator(alpha), InstanceAnnotator(), LineZoneAnnotator(), InfoOverlay()])
        self._writer: VideoWriter | None = None

    def write(self, result: FrameResult) -> None:
        scene = result.frame.image.copy()
        for annotator in self.annotators:
            scene = annotator.annotate(scene, result)
        if self._writer is None:
            self._writer = open_video_writer(self.path, self.fps, result.frame.size, crf=self.crf)
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
