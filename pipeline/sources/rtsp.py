"""RTSP cameras and servers: a live source that survives the network.

The default client is PyAV (FFmpeg), already a dependency; ``backend: gstreamer`` reads through
GStreamer's ``rtspsrc`` instead (hardware decoders on Jetson-class devices come that way). Either way
the stream is pulled over TCP: RTP over UDP loses packets, and so frames, on a busy network, and it
does not pass NAT. Lost streams are reopened with back-off by :mod:`pipeline.sources.backoff`.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from urllib.parse import urlsplit

import av

from pipeline.errors import EdgeSegError
from pipeline.sources.backoff import OpenSession, Session, StreamLost, display_uri, reconnecting_frames
from pipeline.sources.base import SourceOptions, SourceStats
from pipeline.types import Frame

RTSP_SCHEMES = ("rtsp", "rtsps")


def ffmpeg_rtsp_options(open_timeout_s: float) -> dict[str, str]:
    """Demuxer options for FFmpeg's RTSP client. ``timeout`` is its socket I/O timeout in microseconds
    (FFmpeg 5+; older releases called it ``stimeout`` and used ``timeout`` for listening), so a server
    that goes silent ends the session instead of blocking the read for good."""
    return {"rtsp_transport": "tcp", "timeout": str(round(open_timeout_s * 1_000_000))}


def _reason(exc: Exception) -> str:
    """FFmpeg's own words for what went wrong (``Connection refused``, ``Server returned 404 Not Found``),
    without the URI that PyAV appends to them: the caller's message names it already."""
    if isinstance(exc, av.ExitError):  # PyAV's own timeout interrupted a blocking call
        return "no response in time"
    return getattr(exc, "strerror", None) or str(exc)


class RtspSource:
    """Frames from an ``rtsp://`` or ``rtsps://`` URI, reconnecting whenever the stream is lost.

    ``options.open_timeout_s`` bounds each connection attempt and each read; ``reconnect_*`` set the
    back-off and how many failed attempts in a row end the source with an :class:`EdgeSegError`
    (0: retry until stopped; this includes a first connection that never succeeds).
    """

    def __init__(self, uri: str, source_id: str, options: SourceOptions) -> None:
        parts = urlsplit(uri)
        if parts.scheme.lower() not in RTSP_SCHEMES or not parts.hostname:
            raise EdgeSegError(f"{display_uri(uri)}: not an RTSP URI (expected rtsp://host[:port]/path)")
        self.uri = uri
        self.source_id = source_id
        self.live = True
        self.length: int | None = None
        self.fps: float | None = None  # known once the first session has opened
        self.stats = SourceStats()
        self._options = options
        self._frames: Generator[Frame, None, None] | None = None
        self._open_session: OpenSession
        if options.backend in ("auto", "pyav"):
            self._open_session = self._pyav_session
        elif options.backend == "gstreamer":
            from pipeline.sources.gstreamer import gst, gst_session  # GStreamer is optional: imported only here

            gst()  # fail here, with the install hint, rather than in the source thread
            self._open_session = lambda stop: gst_session(uri, options, stop, live=True, on_fps=self._set_fps)
        else:
            raise EdgeSegError(f"{display_uri(uri)}: backend {options.backend!r} cannot read RTSP; "
                               f"use pyav or gstreamer")

    def _set_fps(self, fps: float) -> None:
        self.fps = fps

    def _pyav_session(self, stop: threading.Event) -> Session:
        """One connection through FFmpeg. ``stop`` is not consulted: FFmpeg's reads cannot be woken, and
        the I/O timeout bounds how long one can block."""
        timeout = self._options.open_timeout_s
        try:
            container = av.open(self.uri, options=ffmpeg_rtsp_options(timeout), timeout=(timeout, timeout))
        except (av.FFmpegError, OSError) as exc:
            raise StreamLost(_reason(exc)) from None
        try:
            if not container.streams.video:
                raise EdgeSegError(f"{display_uri(self.uri)}: the stream has no video")
            stream = container.streams.video[0]
            if stream.average_rate:
                self._set_fps(float(stream.average_rate))
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.InvalidDataError:
                    continue  # one damaged packet: the decoder recovers at the next key frame, no need to reconnect
                for frame in decoded:
                    yield frame.to_ndarray(format="bgr24"), frame.time
        except (av.FFmpegError, OSError) as exc:
            raise StreamLost(_reason(exc)) from None
        finally:
            container.close()

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        self._frames = reconnecting_frames(self.uri, self.source_id, self._options, self.stats,
                                           self._open_session, stop)
        return self._frames

    def close(self) -> None:
        """Close the connection of an iteration left unfinished (closing a finished one does nothing). Call
        it from the thread that iterated, or after that thread has ended."""
        if self._frames is not None:
            self._frames.close()
