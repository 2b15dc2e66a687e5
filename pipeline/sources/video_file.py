"""Video files, decoded frame by frame with PyAV (default) or OpenCV, cut-short files reported.

Frames are yielded as soon as they are decoded, so a long file starts flowing at once and memory
stays flat. pts are the container's presentation times relative to the first frame. A file cut
short (a recording killed before it finished, a partial download) or damaged mid-stream must not
pass for a short clip: a decoding error names its frame, a pass that ends well short of the frame
count (or, without one, the duration) the header gives is reported as truncated, and an mp4 whose
index never got written is named as such rather than as "invalid data".
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from pipeline.errors import EdgeSegError
from pipeline.sources.base import SourceOptions, SourceStats
from pipeline.sources.passes import frames_in_passes
from pipeline.sources.uri import local_path
from pipeline.types import Frame

COMPLETE = 0.98  # a pass with fewer frames (or seconds) than this share of the header's is truncated
RAW_STEP = 1 / 25  # frame interval for a raw stream without timestamps or rate (FFmpeg assumes 25 fps too)


class VideoFileSource:
    """A local video file (or ``file://`` URI). ``options.backend == "opencv"`` decodes with OpenCV's
    FFmpeg instead of PyAV (for comparison; OpenCV reports less about damage)."""

    live = False

    def __init__(self, uri: str, source_id: str, options: SourceOptions = SourceOptions()):
        self.uri, self.source_id, self.options = uri, source_id, options
        self.path = local_path(uri)
        self.stats = SourceStats()
        if not self.path.is_file():
            raise EdgeSegError(f"{uri}: {'not a regular file' if self.path.exists() else 'no such file'}")
        self._opencv = options.backend == "opencv"
        # Opened here, not at the first frame: a bad file fails at open_source, and length/fps are known.
        self._handle: av.container.InputContainer | cv2.VideoCapture | None
        if self._opencv:
            self._handle = self._open_opencv()
            self._header_frames, self._header_seconds, self.fps = _opencv_header(self._handle)
        else:
            self._handle = self._open_pyav()
            self._header_frames, self._header_seconds, self.fps = _pyav_header(self._handle)
        self.length = None if options.loop else self._header_frames
        self._step = 1 / self.fps if self.fps else RAW_STEP

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        one_pass = self._pass_opencv if self._opencv else self._pass_pyav
        return frames_in_passes(one_pass, loop=self.options.loop, stop=stop, source_id=self.source_id,
                                stats=self.stats, frame_step=self._step)

    def close(self) -> None:
        if self._handle is not None:
            if self._opencv:
                self._handle.release()
            else:
                self._handle.close()
            self._handle = None

    # PyAV
    def _open_pyav(self) -> av.container.InputContainer:
        try:
            container = av.open(str(self.path), metadata_errors="replace")
        except PermissionError:
            raise EdgeSegError(f"{self.uri}: cannot read: permission denied") from None
        except (av.FFmpegError, OSError) as e:
            raise EdgeSegError(f"{self.uri}: {_unreadable(self.path, _reason(e))}") from None
        if not container.streams.video:
            container.close()
            raise EdgeSegError(f"{self.uri}: no video stream")
        return container

    def _pass_pyav(self) -> Iterator[tuple[np.ndarray, float]]:
        container = self._handle = self._handle or self._open_pyav()
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            to_bgr = VideoReformatter()  # one per pass: keeps its scaler context instead of one per frame
            count, first, pts = 0, None, -self._step
            try:
                for packet in container.demux(stream):
                    for frame in packet.decode():
                        if frame.time is None:  # raw elementary streams carry no timestamps
                            pts += self._step
                        else:
                            first = frame.time if first is None else first
                            pts = frame.time - first
                        yield to_bgr.reformat(frame, format="bgr24").to_ndarray(), pts
                        count += 1
            except av.FFmpegError as e:
                raise EdgeSegError(f"{self.uri}: corrupt data at frame {count}: {_reason(e)}") from None
            self._check_complete(count, pts + self._step)
        finally:
            container.close()
            self._handle = None

    # OpenCV
    def _open_opencv(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            raise EdgeSegError(f"{self.uri}: {_unreadable(self.path, 'OpenCV cannot open it')}")
        return capture

    def _pass_opencv(self) -> Iterator[tuple[np.ndarray, float]]:
        capture = self._handle = self._handle or self._open_opencv()
        try:
            count, first, pts = 0, 0.0, 0.0
            while True:
                ok, image = capture.read()
                if not ok:
                    break
                msec = capture.get(cv2.CAP_PROP_POS_MSEC)
                if count == 0:
                    first = msec
                t = (msec - first) / 1000
                pts = t if count == 0 or t > pts else pts + self._step  # no timestamps: OpenCV gives 0
                yield image, pts
                count += 1
            self._check_complete(count, pts + self._step)
        finally:
            capture.release()
            self._handle = None

    def _check_complete(self, count: int, seconds: float) -> None:
        """A pass that ended clearly short of what the header promises lost the rest of the file."""
        if count == 0:
            raise EdgeSegError(f"{self.uri}: no frame could be decoded (truncated or corrupt)")
        if self._header_frames and count < COMPLETE * self._header_frames:
            raise EdgeSegError(f"{self.uri}: truncated: decoded {count} of {self._header_frames} frames "
                               f"(file cut short or corrupt)")
        if not self._header_frames and self._header_seconds and seconds < COMPLETE * self._header_seconds:
            raise EdgeSegError(f"{self.uri}: truncated: decoded {count} frames, {seconds:.2f} s of "
                               f"{self._header_seconds:.2f} s (file cut short or corrupt)")


def _pyav_header(container: av.container.InputContainer) -> tuple[int | None, float | None, float | None]:
    """Frames, seconds and frame rate as the container states them before decoding (None: not stated)."""
    stream = container.streams.video[0]
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    else:  # Matroska/WebM give the duration only for the whole file
        seconds = container.duration / av.time_base if container.duration else None
    return stream.frames or None, seconds, float(stream.average_rate) if stream.average_rate else None


def _opencv_header(capture: cv2.VideoCapture) -> tuple[int | None, float | None, float | None]:
    """As :func:`_pyav_header`; OpenCV estimates a count from the duration where none is stored, so the
    count stands for both, and raw streams give a garbage count."""
    count, fps = capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FPS)
    return int(count) if 0 < count < 2**31 else None, None, fps if fps > 0 else None


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)


def _unreadable(path: Path, reason: str) -> str:
    """Why a file that exists does not open as a video, as precisely as can be told."""
    if path.stat().st_size == 0:
        return "empty file"
    if _mp4_without_index(path):
        return "truncated: the mp4 has no index (moov box), the recording was cut short"
    return f"not a video, or truncated/corrupt ({reason})"


def _mp4_without_index(path: Path) -> bool:
    """True for an ISO media file (mp4, mov) with no top-level ``moov`` box. Recorders write that index
    last, so a recording killed before it finished lacks it and FFmpeg only says "invalid data"."""
    size = path.stat().st_size
    with path.open("rb") as f:
        if f.read(8)[4:8] != b"ftyp":
            return False
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            header = f.read(16)
            box, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if kind == b"moov":
                return False
            if box == 1:  # 64-bit size follows the type
                box = int.from_bytes(header[8:16], "big")
            elif box == 0:  # box runs to the end of the file
                break
            if box < 8:
                break
            pos += box
    return True
