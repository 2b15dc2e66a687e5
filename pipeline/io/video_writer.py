"""H.264 mp4 writing through PyAV (OpenCV's wheels cannot encode H.264).

Used by the annotated-video sink and by the synthetic world's clip writer. The output is
deterministic for the same frames (x264 is deterministic unless told otherwise, and nothing
time-dependent is written into the container), which keeps `edgeseg synth` byte-reproducible.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from pipeline.errors import EdgeSegError


class H264Writer:
    """Context manager: ``with H264Writer(path, fps, (w, h)) as w: w.write(bgr)``.

    Closing flushes the encoder and writes the mp4 index, so the file is playable even when the
    caller stops early (an exception or a signal that unwinds through ``with``)."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], crf: int = 23,
                 preset: str = "veryfast", threads: int = 1):
        self.path = Path(path)
        self.size = size
        width, height = size
        if width % 2 or height % 2:
            raise EdgeSegError(f"{self.path}: H.264 needs an even frame size, got {width}x{height}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._container = av.open(str(self.path), mode="w", format="mp4")
        except OSError as e:
            raise EdgeSegError(f"{self.path}: cannot open for writing: {e}") from None
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = 1 / rate
        self._stream.codec_context.options = {"crf": str(crf), "preset": preset, "threads": str(threads)}
        self._count = 0

    @property
    def frames_written(self) -> int:
        return self._count

    def write(self, image: np.ndarray) -> None:
        """Append one HxWx3 uint8 BGR frame of the writer's size."""
        if image.shape[:2] != (self.size[1], self.size[0]):
            raise EdgeSegError(
                f"{self.path}: frame {self._count} is {image.shape[1]}x{image.shape[0]}, "
                f"expected {self.size[0]}x{self.size[1]}")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = self._count
        self._count += 1
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None

    def __enter__(self) -> H264Writer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
