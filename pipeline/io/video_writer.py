"""mp4 writing: H.264 through PyAV, or MPEG-4 Part 2 (``mp4v``) through OpenCV where PyAV lacks libx264.

OpenCV's wheels cannot encode H.264, so H.264 needs PyAV built with libx264 (the PyPI wheels are).
A PyAV built without it (some distribution packages) still decodes everything, and OpenCV's bundled
FFmpeg always has the ``mpeg4`` encoder, so :func:`open_video_writer` falls back to that: larger files
of lower quality, but a video that every player opens. Both writers share one interface
(:class:`VideoWriter`) so callers never need to know which they got.

H264Writer's output is deterministic for the same frames (x264 is deterministic unless told
otherwise, and nothing time-dependent is written into the container), which keeps `edgeseg synth`
byte-reproducible; the synthetic world's clip writer therefore uses H264Writer directly.

Both writers finalise the mp4 (flush the encoder, write the index) on close, also when the caller
leaves their ``with`` block through an exception, so every frame written before it stays playable.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import av
import cv2
import numpy as np

from pipeline.errors import EdgeSegError


class VideoWriter(Protocol):
    path: Path
    size: tuple[int, int]

    @property
    def frames_written(self) -> int: ...

    def write(self, image: np.ndarray) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> VideoWriter: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


@cache
def has_libx264() -> bool:
    """Whether this PyAV can encode H.264 (asked once per process)."""
    try:
        av.codec.Codec("libx264", "w")
    except av.codec.codec.UnknownCodecError:
        return False
    return True


def open_video_writer(path: str | Path, fps: float, size: tuple[int, int], crf: int = 23) -> VideoWriter:
    """H264Writer when PyAV has libx264, else Mp4vWriter (which has no CRF; ``crf`` is then unused)."""
    if has_libx264():
        return H264Writer(path, fps, size, crf=crf)
    return Mp4vWriter(path, fps, size)


class _Writer:
    """What both writers share: the size checks, the frame count and the context-manager protocol.

    Both codecs store 4:2:0 chroma, which needs even sizes; OpenCV would silently crop an odd frame
    and silently drop one of the wrong size, so both writers refuse them up front instead."""

    codec = ""

    def __init__(self, path: str | Path, size: tuple[int, int]):
        self.path = Path(path)
        self.size = size
        width, height = size
        if width % 2 or height % 2:
            raise EdgeSegError(f"{self.path}: {self.codec} needs an even frame size, got {width}x{height}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EdgeSegError(f"{self.path.parent}: cannot create the video's folder: {e.strerror}") from None
        self._count = 0

    @property
    def frames_written(self) -> int:
        return self._count

    def _check(self, image: np.ndarray) -> None:
        if image.shape != (self.size[1], self.size[0], 3) or image.dtype != np.uint8:
            raise EdgeSegError(f"{self.path}: frame {self._count} has shape {image.shape} {image.dtype}, expected "
                               f"({self.size[1]}, {self.size[0]}, 3) uint8 BGR")

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class H264Writer(_Writer):
    """Context manager: ``with H264Writer(path, fps, (w, h)) as w: w.write(bgr)``."""

    codec = "H.264"

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], crf: int = 23,
                 preset: str = "veryfast", threads: int = 1):
        super().__init__(path, size)
        if not has_libx264():
            raise EdgeSegError(f"{self.path}: this PyAV has no libx264 encoder; use open_video_writer")
        try:
            self._container = av.open(str(self.path), mode="w", format="mp4")
        except OSError as e:
            raise EdgeSegError(f"{self.path}: cannot open for writing: {e}") from None
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = size
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = 1 / rate
        self._stream.codec_context.options = {"crf": str(crf), "preset": preset, "threads": str(threads)}

    def write(self, image: np.ndarray) -> None:
        """Append one HxWx3 uint8 BGR frame of the writer's size."""
        self._check(image)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = self._count
        self._count += 1
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the frames x264 still holds (its lookahead), then write the mp4 index. Idempotent."""
        if self._container is None:
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None


class Mp4vWriter(_Writer):
    """The fallback: OpenCV's VideoWriter with FourCC ``mp4v`` (FFmpeg's ``mpeg4`` encoder, its default
    bit rate; OpenCV exposes no quality setting for it), same interface as H264Writer."""

    codec = "MPEG-4"

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        super().__init__(path, size)
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
        if not self._writer.isOpened():
            raise EdgeSegError(f"{self.path}: OpenCV cannot open an mp4v video for writing here")

    def write(self, image: np.ndarray) -> None:
        """Append one HxWx3 uint8 BGR frame of the writer's size."""
        self._check(image)
        self._writer.write(image)
        self._count += 1

    def close(self) -> None:
        """Release the writer, which flushes the encoder and writes the mp4 index. Idempotent."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
