"""Local cameras, ``/dev/videoN`` or ``camera:N``, read through OpenCV's VideoCapture.

A camera is live: frames come at the sensor's pace whether or not the pipeline keeps up (its queue
drops the oldest). Time comes from the capture itself: the driver's buffer timestamps
(CAP_PROP_POS_MSEC, which V4L2 fills) when the driver gives them, else the monotonic clock when each
frame arrived; both relative to the first frame so that pts starts at 0.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import cv2

from pipeline.errors import EdgeSegError
from pipeline.sources.base import SourceOptions, SourceStats
from pipeline.sources.uri import CAMERA
from pipeline.types import Frame


class CameraSource:
    live = True
    length = None

    def __init__(self, uri: str, source_id: str, options: SourceOptions = SourceOptions()):
        self.uri, self.source_id = uri, source_id
        self.stats = SourceStats()
        match = CAMERA.match(uri)
        if match is None:
            raise EdgeSegError(f"{uri}: not a camera (expected camera:N or /dev/videoN)")
        if uri.startswith("/dev/") and not os.path.exists(uri):
            raise EdgeSegError(f"{uri}: no such device")
        with _opencv_quiet():  # a camera index is opened through V4L2 on Linux, the platform's API elsewhere
            capture = (cv2.VideoCapture(uri, cv2.CAP_V4L2) if uri.startswith("/dev/")
                       else cv2.VideoCapture(int(match.group(1))))
        if not capture.isOpened():
            capture.release()
            raise EdgeSegError(f"{uri}: cannot open the camera (no such device, or in use by another program)")
        self._capture: cv2.VideoCapture | None = capture
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps > 0 else None

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        capture = self._capture
        index, start, driver_clock = 0, 0.0, False
        while capture is not None and not stop.is_set():
            ok, image = capture.read()
            if not ok:
                if stop.is_set() or self._capture is None:  # closed while waiting for a frame
                    return
                raise EdgeSegError(f"{self.uri}: the camera stopped delivering frames ({index} read)")
            msec = capture.get(cv2.CAP_PROP_POS_MSEC)
            if index == 0:  # the first frame decides the clock for the whole run
                driver_clock = msec > 0
                start = msec / 1000 if driver_clock else time.monotonic()
            now = msec / 1000 if driver_clock else time.monotonic()
            self.stats.frames += 1
            yield Frame(image=image, index=index, pts=now - start, source_id=self.source_id)
            index += 1

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


@contextmanager
def _opencv_quiet() -> Iterator[None]:
    """OpenCV logs a warning per backend it tries on a missing camera; the one-line error says it all."""
    previous = cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)
