"""The GStreamer backend with the real GStreamer: a real video file checked against PyAV's decode of
the same file, small files GStreamer itself encodes (audio beside video, audio only, looping), and the
RTSP client through RtspSource against tests/rtsp_server.py. (Reconnection of GstSource is tested next
to the PyAV client's in test_rtsp.py.)"""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest
from rtsp_server import Collector, RtspTestServer, free_port, gi_unavailable

from pipeline.errors import EdgeSegError
from pipeline.sources.base import SourceOptions
from pipeline.sources.rtsp import RtspSource

if reason := gi_unavailable():
    pytest.skip(reason, allow_module_level=True)

from pipeline.sources.gstreamer import GstSource, gst, to_gst_uri  # noqa: E402  (needs gi, checked above)

GST = SourceOptions(backend="gstreamer")


@pytest.fixture(scope="module")
def video(shared_dir):
    return shared_dir / "data" / "videos" / "solidWhiteRight.mp4"


def pyav_frames(path, indices: set[int]) -> dict[int, tuple[np.ndarray, float]]:
    """The reference: PyAV's BGR pictures and times for a few frames of the same file."""
    with av.open(str(path)) as container:
        return {i: (f.to_ndarray(format="bgr24"), f.time) for i, f in enumerate(container.decode(video=0))
                if i in indices}


def encode(path, branches: str) -> None:
    """Write a small test file with GStreamer's own encoders and muxer."""
    Gst = gst().Gst
    pipeline = Gst.parse_launch(f"mp4mux name=mux ! filesink location={path} {branches}")
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(10 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    assert message is not None and message.type == Gst.MessageType.EOS, "could not write the test file"


VIDEO = ("videotestsrc pattern=ball num-buffers=30 ! video/x-raw,width=160,height=120,framerate=25/1 "
         "! x264enc ! h264parse ! mux.")
AUDIO = "audiotestsrc num-buffers=60 ! audioconvert ! avenc_aac ! aacparse ! mux."


def test_file_gives_every_frame_with_its_timestamp(video):
    source = GstSource(str(video), "road", GST)
    assert not source.live and source.length is None
    checked = {0, 100, 220}
    reference = pyav_frames(video, checked)
    seen, pts = 0, []
    for frame in source.frames(threading.Event()):
        assert frame.index == seen and frame.source_id == "road"
        assert frame.size == (960, 540) and frame.image.dtype == np.uint8 and frame.image.flags.writeable
        pts.append(frame.pts)
        if frame.index in checked:
            image, time = reference[frame.index]
            assert frame.pts == pytest.approx(time - reference[0][1], abs=1e-3)
            # Same H.264 decode; only the YUV->BGR conversion differs (videoconvert against swscale).
            assert np.abs(frame.image.astype(np.int16) - image).mean() < 3.0
        seen += 1
    assert seen == 221 and source.stats.frames == 221
    assert pts[0] == 0.0 and np.all(np.diff(pts) > 0) and pts[-1] == pytest.approx(8.8)
    assert source.fps == pytest.approx(25.0)


def test_file_uri_works_like_a_path(video):
    frames = GstSource(to_gst_uri(str(video)), "road", GST).frames(threading.Event())
    first = next(frames)
    frames.close()  # stopping early tears the pipeline down without waiting for the end
    assert first.index == 0 and first.size == (960, 540)


def test_stop_ends_a_file_early(video):
    stop = threading.Event()
    taken = []
    for frame in GstSource(str(video), "road", GST).frames(stop):
        taken.append(frame.index)
        if frame.index == 9:
            stop.set()
    assert taken == list(range(10))


def test_loop_plays_the_file_again_with_time_running_on(tmp_path):
    path = tmp_path / "clip.mp4"
    encode(path, VIDEO)
    stop = threading.Event()
    frames = []
    for frame in GstSource(str(path), "clip", SourceOptions(backend="gstreamer", loop=True)).frames(stop):
        frames.append(frame)
        if frame.index == 74:  # two and a half passes of 30 frames
            stop.set()
    assert [f.index for f in frames] == list(range(75))
    assert np.diff([f.pts for f in frames]) == pytest.approx(np.full(74, 0.04))
    assert not np.array_equal(frames[0].image, frames[5].image)  # the ball moves...
    assert np.array_equal(frames[0].image, frames[30].image) and np.array_equal(frames[5].image, frames[65].image)


def test_missing_file_is_one_line_error(tmp_path):
    with pytest.raises(EdgeSegError, match=r"nothing\.mp4: no such file"):
        GstSource(str(tmp_path / "nothing.mp4"), "x", GST)


def test_file_that_is_not_video_names_file_and_frame(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video\n")
    with pytest.raises(EdgeSegError) as info:
        list(GstSource(str(path), "x", GST).frames(threading.Event()))
    message = str(info.value)
    assert message.startswith(f"{path}: decoding failed at frame 0: ") and "\n" not in message


def test_audio_beside_the_video_is_ignored(tmp_path):
    path = tmp_path / "talk.mp4"
    encode(path, f"{VIDEO} {AUDIO}")
    frames = list(GstSource(str(path), "talk", GST).frames(threading.Event()))
    assert len(frames) == 30 and frames[-1].size == (160, 120) and frames[-1].pts == pytest.approx(29 / 25)


def test_audio_only_file_says_so(tmp_path):
    path = tmp_path / "song.mp4"
    encode(path, AUDIO)
    with pytest.raises(EdgeSegError, match=r"song\.mp4: no video stream \(only audio/x-raw\)$"):
        list(GstSource(str(path), "song", GST).frames(threading.Event()))


def test_rtsp_source_with_gstreamer_backend_reads_the_stream():
    with RtspTestServer(free_port()) as server:
        source = RtspSource(server.uri, "cam", SourceOptions(backend="gstreamer"))
        collector = Collector(source)
        try:
            assert collector.wait_until(lambda: len(collector.frames) >= 25, timeout=10), collector.error
        finally:
            stopped_in = collector.finish(timeout=5)
    assert stopped_in < 1.0  # the appsink is polled every 0.1 s, so stop is seen at once
    frames = collector.frames
    assert all(f.size == (320, 240) for f in frames)
    assert np.all(np.diff([f.pts for f in frames]) > 0) and source.fps == pytest.approx(25.0)
