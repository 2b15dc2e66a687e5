"""The GStreamer backend: any URI GStreamer can play (files, rtsp://, http://), decoded to BGR frames.

Chosen with ``backend: gstreamer``. Worth it where GStreamer brings decoders that FFmpeg lacks
(hardware decoders on Jetson and i.MX boards plug in through ``decodebin``'s ranks) or for sources it
handles better. Needs the system GStreamer with its introspection data and PyGObject (the ``gst``
extra; ``tools/install_system_deps.sh`` installs the system part).

The graph is ``uridecodebin -> videoconvert -> BGR caps -> appsink``. Frames are pulled from the
appsink with a short timeout rather than through its signal, so the reading thread notices ``stop``
within a tenth of a second however long the stream stays silent, and no GLib main loop is needed.
Live URIs reconnect with back-off exactly like :class:`pipeline.sources.rtsp.RtspSource`.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlsplit

import numpy as np

from pipeline.errors import EdgeSegError
from pipeline.sources.backoff import Session, StreamLost, display_uri, one_line, reconnecting_frames
from pipeline.sources.base import SourceOptions, SourceStats
from pipeline.types import Frame

LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "srt", "udp")  # streams that exist only in real time
POLL_S = 0.1  # longest wait for a sample before looking at ``stop`` and the bus again
LIVE_QUEUE = 2  # appsink buffers kept for a live stream: older ones are dropped, the freshest frame wins
FILE_QUEUE = 8  # for files: enough to let decoding run ahead, and it blocks rather than drops


@functools.cache
def gst() -> SimpleNamespace:
    """Import and initialise GStreamer once, on first use, so that the rest of the package never needs it."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstApp", "1.0")
        from gi.repository import Gst, GstApp
    except (ImportError, ValueError) as exc:
        raise EdgeSegError(f"the GStreamer backend is not available ({exc}); run tools/install_system_deps.sh "
                           f"and pip install 'edgeseg[gst]'") from None
    Gst.init(None)
    return SimpleNamespace(Gst=Gst, GstApp=GstApp)


def to_gst_uri(uri: str) -> str:
    """A local path becomes a ``file://`` URI (uridecodebin wants URIs); URIs pass through unchanged."""
    if "://" in uri:
        return uri
    return Path(uri).expanduser().resolve().as_uri()


def _element(factory: str):
    element = gst().Gst.ElementFactory.make(factory)
    if element is None:
        raise EdgeSegError(f"GStreamer has no {factory} element: install gstreamer1.0-plugins-base "
                           f"(tools/install_system_deps.sh)")
    return element


def _build(gst_uri: str, options: SourceOptions, live: bool):
    """The pipeline, its appsink, the pad that takes video, and the media types of the streams found but
    not linked. Only the first video stream is linked; audio and other streams are left unlinked, which
    decodebin tolerates while one stream is linked."""
    Gst = gst().Gst
    pipeline = Gst.Pipeline.new("edgeseg-source")
    decode, convert, sink = (_element(name) for name in ("uridecodebin", "videoconvert", "appsink"))
    decode.set_property("uri", gst_uri)
    sink.set_property("caps", Gst.Caps.from_string("video/x-raw,format=BGR"))
    sink.set_property("emit-signals", False)
    sink.set_property("sync", False)  # hand frames over as soon as they are decoded; pts carries the timing
    sink.set_property("max-buffers", LIVE_QUEUE if live else FILE_QUEUE)
    sink.set_property("drop", live)
    for element in (decode, convert, sink):
        pipeline.add(element)
    convert.link(sink)
    video_sink_pad = convert.get_static_pad("sink")
    unlinked: list[str] = []

    def on_pad_added(_element, pad) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        media = caps.get_structure(0).get_name()
        if media.startswith("video/") and not video_sink_pad.is_linked():
            pad.link(video_sink_pad)
        else:
            unlinked.append(media)

    def on_source_setup(_element, source) -> None:
        """Network settings of rtspsrc: interleaved TCP, a short jitter buffer for low latency, and a
        bounded wait on a silent connection."""
        if source.get_factory().get_name() == "rtspsrc":
            Gst.util_set_object_arg(source, "protocols", "tcp")
            source.set_property("latency", 200)  # ms
            source.set_property("tcp-timeout", round(options.open_timeout_s * 1_000_000))  # us

    decode.connect("pad-added", on_pad_added)
    decode.connect("source-setup", on_source_setup)
    return pipeline, sink, video_sink_pad, unlinked


def _image(sample) -> np.ndarray:
    """The sample's BGR pixels as a writable HxWx3 array. Read from the caps each time: a camera may
    change resolution mid-stream. Rows may be padded to 4 bytes, hence the stride from the buffer size."""
    structure = sample.get_caps().get_structure(0)
    width, height = structure.get_value("width"), structure.get_value("height")
    buffer = sample.get_buffer()
    data = buffer.extract_dup(0, buffer.get_size())  # bytes: immutable, so the .copy() below is needed anyway
    stride = len(data) // height
    return np.frombuffer(data, np.uint8).reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()


def _error_text(message) -> str:
    """An error message with its detail: ``Could not open resource for reading and writing. (Failed to
    connect.)``. The detail is the part of the debug text after the element path; the rest is source
    file positions, of no use to a user."""
    error, debug = message.parse_error()
    detail = (debug or "").partition(":\n")[2]
    return one_line(f"{error.message} ({detail})" if detail else error.message)


def _fps(sample) -> float | None:
    ok, num, den = sample.get_caps().get_structure(0).get_fraction("framerate")
    return num / den if ok and num and den else None


def gst_session(uri: str, options: SourceOptions, stop: threading.Event, live: bool,
                on_fps: Callable[[float], None]) -> Session:
    """One run of the pipeline: ``(image, pts)`` until end of stream or ``stop``; :class:`StreamLost` on a
    pipeline error, or when a live stream delivers nothing for ``options.open_timeout_s``."""
    Gst = gst().Gst
    pipeline, sink, video_pad, unlinked = _build(to_gst_uri(uri), options, live)
    bus = pipeline.get_bus()

    def no_video() -> EdgeSegError:
        found = f" (only {', '.join(sorted(set(unlinked)))})" if unlinked else ""
        return EdgeSegError(f"{display_uri(uri)}: no video stream{found}")

    try:
        pipeline.set_state(Gst.State.PLAYING)  # a failure here also posts the error read below
        deadline = time.monotonic() + options.open_timeout_s
        first = True
        error = None  # raised once the frames decoded before it have been handed over
        while not stop.is_set():
            if error is None:
                # pop_filtered also discards the other messages, so the bus never grows on a long run.
                error = bus.pop_filtered(Gst.MessageType.ERROR)
            sample = sink.try_pull_sample(round(POLL_S * Gst.SECOND))
            if sample is None:
                if error is not None:
                    if first and unlinked and not video_pad.is_linked():
                        raise no_video()  # the error is then only that nothing took the other streams
                    raise StreamLost(_error_text(error))
                if sink.is_eos():
                    if first and not video_pad.is_linked():
                        raise no_video()
                    return
                if live and time.monotonic() > deadline:
                    raise StreamLost(f"no frames for {options.open_timeout_s:g} s")
                continue
            if first:
                first = False
                if (fps := _fps(sample)) is not None:
                    on_fps(fps)
            pts = sample.get_buffer().pts
            yield _image(sample), None if pts == Gst.CLOCK_TIME_NONE else pts / Gst.SECOND
            deadline = time.monotonic() + options.open_timeout_s
    finally:
        pipeline.set_state(Gst.State.NULL)


class GstSource:
    """Frames from any URI or local video file, decoded by GStreamer.

    Files end with their last frame, and a decoding error raises :class:`EdgeSegError` naming the frame.
    Live URIs (``rtsp://`` and the like) reconnect with back-off as ``options.reconnect_*`` say.
    ``fps`` is known once the first frame has arrived; ``length`` is not known in advance.
    """

    def __init__(self, uri: str, source_id: str, options: SourceOptions) -> None:
        scheme = urlsplit(uri).scheme.lower() if "://" in uri else "file"
        if scheme == "file":
            path = Path(unquote(urlsplit(uri).path) if "://" in uri else uri).expanduser()
            if not path.is_file():
                raise EdgeSegError(f"{uri}: no such file")
        gst()  # fail here, with the install hint, rather than in the source thread
        self.uri = uri
        self.source_id = source_id
        self.live = scheme in LIVE_SCHEMES
        self.length: int | None = None
        self.fps: float | None = None
        self.stats = SourceStats()
        self._options = options
        self._frames: Generator[Frame, None, None] | None = None

    def _set_fps(self, fps: float) -> None:
        self.fps = fps

    def _session(self, stop: threading.Event) -> Session:
        return gst_session(self.uri, self._options, stop, self.live, self._set_fps)

    def _file_frames(self, stop: threading.Event) -> Generator[Frame, None, None]:
        """A file's pts are its own, from 0 at the first frame. With ``options.loop`` each pass follows
        the last one in time, one frame interval after its last frame. Errors are not retried."""
        index = 0
        offset = 0.0  # added to this pass's pts: where the previous passes ended
        while True:
            start: float | None = None
            times: list[float] = []  # the last two pts of this pass, for the interval that loops on
            session = self._session(stop)
            try:
                for image, pts in session:
                    if pts is None:
                        raise EdgeSegError(f"{display_uri(self.uri)}: frame {index} has no timestamp")
                    start = pts if start is None else start
                    times = [*times[-1:], offset + pts - start]
                    frame = Frame(image=image, index=index, pts=times[-1], source_id=self.source_id)
                    index += 1
                    self.stats.frames += 1
                    yield frame
            except StreamLost as exc:
                raise EdgeSegError(f"{display_uri(self.uri)}: decoding failed at frame {index}: {exc}") from None
            finally:
                session.close()
            if not self._options.loop or stop.is_set() or not times:
                return
            offset = times[-1] + (times[-1] - times[0] if len(times) == 2 else 0.0)

    def frames(self, stop: threading.Event) -> Generator[Frame, None, None]:
        if self.live:
            self._frames = reconnecting_frames(self.uri, self.source_id, self._options, self.stats,
                                               self._session, stop)
        else:
            self._frames = self._file_frames(stop)
        return self._frames

    def close(self) -> None:
        """Stop the pipeline of an iteration left unfinished (closing a finished one does nothing). Call it
        from the thread that iterated, or after that thread has ended."""
        if self._frames is not None:
            self._frames.close()
