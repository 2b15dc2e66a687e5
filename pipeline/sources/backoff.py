"""Reconnection with exponential back-off for live network sources, shared by every client library.

A live source reads through *sessions*: one session is one connection, a generator of
``(image, pts)`` pairs in that session's own time, which ends when the server ends the stream and
raises :class:`StreamLost` when the connection fails. :func:`reconnecting_frames` strings sessions
together into one endless stream of :class:`~pipeline.types.Frame`, so the PyAV and the GStreamer
RTSP clients differ only in how they open a session. What it guarantees across reconnects:
``Frame.index`` keeps counting, ``Frame.pts`` never goes back (each new session's clock restarts,
so its timestamps are re-anchored to the wall-clock time that passed), and every outage is counted
in ``stats.reconnects`` and recorded as a :class:`~pipeline.sources.base.Gap`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from pipeline.errors import EdgeSegError
from pipeline.sources.base import Gap, SourceOptions, SourceStats
from pipeline.types import Frame

log = logging.getLogger("edgeseg.sources")

Session = Iterator[tuple[np.ndarray, float | None]]  # BGR image, pts in the session's clock (None: unknown)
OpenSession = Callable[[threading.Event], Session]  # gets the stop event so that its waits can end early


class StreamLost(Exception):
    """A session could not be opened or stopped delivering frames; the message is the reason, one line."""


def one_line(text: str) -> str:
    """Library error texts can span lines (GStreamer debug info); messages here must not."""
    return " ".join(text.split())


def display_uri(uri: str) -> str:
    """The URI as logs and errors show it: a password in ``rtsp://user:pass@host`` becomes ``***``."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # IPv6 literal
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def backoff_delays(initial_s: float, max_s: float) -> Iterator[float]:
    """initial, 2x initial, 4x initial, ... capped at ``max_s``: quick to recover from a blip, gentle on
    a server that stays down."""
    delay = initial_s
    while True:
        yield delay
        delay = min(delay * 2, max_s)


class _Timeline:
    """Maps each session's timestamps onto one monotonic pts for the whole source.

    The first timed frame of a session is placed where the wall clock says it belongs (0 for the very
    first frame; last pts + elapsed time after an outage) and the session's own timestamps give the
    spacing from there on. A frame without a timestamp, or a timestamp that jumps back (an RTP clock
    resynchronised by RTCP), is placed by the wall clock in the same way.
    """

    def __init__(self) -> None:
        self.last_pts: float | None = None
        self.last_wall = 0.0
        self._offset: float | None = None

    def new_session(self) -> None:
        self._offset = None

    def pts(self, raw: float | None, now: float) -> float:
        expected = 0.0 if self.last_pts is None else self.last_pts + (now - self.last_wall)
        if raw is None:
            pts = expected
        else:
            if self._offset is None or raw + self._offset < self.last_pts:
                self._offset = expected - raw
            pts = raw + self._offset
        self.last_pts, self.last_wall = pts, now
        return pts


def reconnecting_frames(uri: str, source_id: str, options: SourceOptions, stats: SourceStats,
                        open_session: OpenSession, stop: threading.Event) -> Generator[Frame, None, None]:
    """Yield frames from successive sessions of ``uri`` until ``stop`` is set.

    A first connection that fails is retried like a lost stream. ``options.reconnect_attempts`` bounds
    the attempts in a row that may fail after a loss (or after the first connection failed): past it,
    :class:`EdgeSegError` names the URI and the last reason. With 0 the source keeps trying until
    ``stop`` is set, however long the server stays away. Waits between attempts are ``stop.wait``, so
    stopping is immediate there; a read blocked inside a session is bounded by the session's own timeout.
    """
    shown = display_uri(uri)
    timeline = _Timeline()
    index = 0
    failures = 0  # attempts in a row that ended without a frame, counting the loss that started the outage
    delays = backoff_delays(options.reconnect_initial_s, options.reconnect_max_s)
    outage_start = time.monotonic()
    reason = ""
    while not stop.is_set():
        session = open_session(stop)
        timeline.new_session()
        flowing = False
        try:
            for image, raw_pts in session:
                now = time.monotonic()
                if not flowing:
                    flowing = True
                    if failures:
                        gap = Gap(after_frame=index - 1, seconds=now - outage_start, attempts=failures, reason=reason)
                        stats.gaps.append(gap)
                        stats.reconnects += 1
                        log.info("%s: stream back after %.1f s (%d attempt%s)", shown, gap.seconds, failures,
                                 "" if failures == 1 else "s")
                    failures = 0
                    delays = backoff_delays(options.reconnect_initial_s, options.reconnect_max_s)
                frame = Frame(image=image, index=index, pts=timeline.pts(raw_pts, now), source_id=source_id)
                index += 1
                stats.frames += 1
                yield frame
                if stop.is_set():
                    return
            reason = "stream ended"
        except StreamLost as exc:
            reason = one_line(str(exc))
        finally:
            session.close()
        if stop.is_set():
            return
        if flowing:
            outage_start = timeline.last_wall
        failures += 1
        if options.reconnect_attempts and failures > options.reconnect_attempts:
            if index == 0:
                raise EdgeSegError(f"{shown}: cannot open the stream after {failures} attempts: {reason}")
            raise EdgeSegError(f"{shown}: stream lost after frame {index - 1} and not back after "
                               f"{options.reconnect_attempts} reconnect attempts: {reason}")
        delay = next(delays)
        if flowing:
            log.warning("%s: stream lost (%s); reconnecting in %.1f s", shown, reason, delay)
        else:
            log.warning("%s: cannot connect (%s); retrying in %.1f s", shown, reason, delay)
        if stop.wait(delay):
            return
