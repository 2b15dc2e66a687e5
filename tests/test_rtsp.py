"""RTSP sources against a real RTSP server on 127.0.0.1 (tests/rtsp_server.py), killed and restarted
mid-stream to prove that a source reconnects, keeps counting frames and keeps time moving forward."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from rtsp_server import Collector, RtspTestServer, free_port, gi_unavailable

from pipeline.errors import EdgeSegError
from pipeline.sources.backoff import _Timeline, backoff_delays, display_uri
from pipeline.sources.base import SourceOptions
from pipeline.sources.rtsp import RtspSource, ffmpeg_rtsp_options

# Quick back-off so that a 1.5 s outage costs a few attempts, not one long wait.
FAST = SourceOptions(reconnect_initial_s=0.2, reconnect_max_s=0.5, open_timeout_s=3.0)


@pytest.fixture
def server():
    reason = gi_unavailable()
    if reason:
        pytest.skip(reason)
    with RtspTestServer(free_port()) as running:
        yield running


def make_source(backend: str, uri: str, options: SourceOptions = FAST):
    """The PyAV client (RtspSource's default) or the GStreamer one (GstSource on an rtsp:// URI)."""
    if backend == "pyav":
        return RtspSource(uri, "cam", options)
    if reason := gi_unavailable():
        pytest.skip(reason)
    from pipeline.sources.gstreamer import GstSource

    return GstSource(uri, "cam", options)


def test_backoff_doubles_up_to_the_cap():
    delays = backoff_delays(0.5, 3.0)
    assert [next(delays) for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_display_uri_hides_the_password_only():
    assert display_uri("rtsp://admin:s3cret@10.0.0.5:554/live") == "rtsp://admin:***@10.0.0.5:554/live"
    assert display_uri("rtsp://10.0.0.5/live") == "rtsp://10.0.0.5/live"


def test_timeline_re_anchors_new_sessions_on_the_wall_clock():
    timeline = _Timeline()
    assert [timeline.pts(t, 95.0 + t) for t in (5.0, 5.04, 5.08)] == pytest.approx([0.0, 0.04, 0.08])
    timeline.new_session()  # reconnected 2 s later: the new session's clock restarts near 0
    assert timeline.pts(0.0, 102.08) == pytest.approx(2.08)
    assert timeline.pts(0.04, 102.2) == pytest.approx(2.12)  # spacing from the stream, not the arrival time
    assert timeline.pts(None, 102.3) == pytest.approx(2.22)  # no timestamp: wall clock from the last frame
    assert timeline.pts(-7.0, 102.4) == pytest.approx(2.32)  # clock jumped back: re-anchored, never backwards


def test_ffmpeg_timeout_is_in_microseconds():
    assert ffmpeg_rtsp_options(2.5) == {"rtsp_transport": "tcp", "timeout": "2500000"}


@pytest.mark.parametrize("backend", ["pyav", "gstreamer"])
def test_reads_live_frames(server, backend):
    collector = Collector(make_source(backend, server.uri))
    try:
        assert collector.wait_until(lambda: len(collector.frames) >= 30, timeout=10), collector.error
    finally:
        stopped_in = collector.finish(timeout=5)
    assert stopped_in < 1.0  # stop is seen between frames (25 fps) or at the next 0.1 s appsink poll
    frames = collector.frames
    assert all(f.size == (320, 240) and f.image.dtype == np.uint8 for f in frames)
    assert [f.index for f in frames] == list(range(len(frames)))
    pts = np.array([f.pts for f in frames])
    assert pts[0] == 0.0 and np.all(np.diff(pts) > 0)
    assert 0.8 < pts[29] < 1.6  # 25 fps stream: ~1.16 s for 29 intervals (the first frame may lack a timestamp)
    assert collector.source.fps == pytest.approx(25.0)
    assert not np.array_equal(frames[0].image, frames[-1].image)  # the ball moves: these are live pictures
    assert collector.source.stats.frames == len(frames) and collector.source.stats.reconnects == 0


@pytest.mark.parametrize("backend", ["pyav", "gstreamer"])
def test_reconnects_after_the_server_dies_and_returns(server, backend):
    source = make_source(backend, server.uri)
    collector = Collector(source)
    try:
        assert collector.wait_until(lambda: len(collector.frames) >= 20, timeout=10), collector.error
        server.kill()
        time.sleep(1.5)
        server.start()
        back = collector.wait_until(lambda: source.stats.gaps and
                                    len(collector.frames) - source.stats.gaps[0].after_frame > 20, timeout=10)
        assert back, f"no frames after the restart; error={collector.error!r} stats={source.stats}"
    finally:
        collector.finish(timeout=5)
    frames = collector.frames
    assert source.stats.reconnects == 1 and len(source.stats.gaps) == 1
    gap = source.stats.gaps[0]
    assert gap.seconds > 1.0 and gap.attempts >= 2 and gap.reason  # 1.5 s down at 0.2-0.5 s intervals
    assert 19 <= gap.after_frame < len(frames) - 20  # frames 0-19 at least came before the kill
    assert [f.index for f in frames] == list(range(len(frames)))
    pts = np.array([f.pts for f in frames])
    assert np.all(np.diff(pts) > 0)
    jump = frames[gap.after_frame + 1].pts - frames[gap.after_frame].pts
    assert jump == pytest.approx(gap.seconds, abs=0.3)  # pts moved on by the wall-clock time of the outage
    assert all(f.size == (320, 240) for f in frames[gap.after_frame + 1:])


@pytest.mark.parametrize("backend", ["pyav", "gstreamer"])
def test_nothing_listening_gives_one_line_error(backend):
    uri = f"rtsp://viewer:hunter2@127.0.0.1:{free_port()}/cam"
    source = make_source(backend, uri, SourceOptions(reconnect_attempts=1, reconnect_initial_s=0.2, open_timeout_s=2))
    started = time.monotonic()
    with pytest.raises(EdgeSegError) as info:
        list(source.frames(threading.Event()))
    message = str(info.value)
    assert time.monotonic() - started < 5
    assert "\n" not in message and "rtsp://viewer:***@127.0.0.1" in message and "hunter2" not in message
    assert "after 2 attempts" in message
    assert source.stats.frames == 0


def test_bad_path_names_the_server_answer(server):
    uri = server.uri.replace("/test", "/nope")
    options = SourceOptions(reconnect_attempts=1, reconnect_initial_s=0.2, open_timeout_s=2)
    with pytest.raises(EdgeSegError, match=r"/nope: cannot open the stream after 2 attempts: .*404"):
        list(RtspSource(uri, "cam", options).frames(threading.Event()))


def test_stop_ends_the_back_off_wait_at_once():
    source = RtspSource(f"rtsp://127.0.0.1:{free_port()}/cam", "cam",
                        SourceOptions(reconnect_initial_s=30, reconnect_attempts=0))
    collector = Collector(source)
    time.sleep(0.5)  # the refused connection is immediate: by now it waits out the 30 s back-off
    assert collector.finish(timeout=2) < 1.0
    assert collector.frames == []


def test_rejects_a_non_rtsp_uri():
    with pytest.raises(EdgeSegError, match="not an RTSP URI"):
        RtspSource("http://127.0.0.1/x", "cam", SourceOptions())
