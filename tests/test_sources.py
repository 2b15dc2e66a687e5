"""Sources read real inputs: the shared road videos, clips written here by PyAV and damaged on purpose,
image folders, the synthetic world and (where one is plugged in) a camera. What FFmpeg does with a
damaged file was tried, not assumed; the tests pin that behaviour down:

- an mp4 whose moov index sits at the end (our H264Writer), cut short: FFmpeg cannot open it at all;
- cut short mid-stream (faststart mp4, mkv, avi): it decodes what is there and stops without an error,
  so the source compares with the header (frame count, or duration for mkv) and reports truncation;
- a block of random bytes inside the H.264 data of an mp4: decoding raises at that frame;
- the same block inside an mkv: the demuxer stops early without an error (reported as truncated);
- the same block inside an MPEG-4 Part 2 avi, or a few bytes inside an mp4: FFmpeg conceals the
  damage and every frame comes out, which is accepted.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from pipeline.errors import EdgeSegError
from pipeline.io.video_writer import H264Writer
from pipeline.sources import SourceOptions, open_source
from pipeline.sources.uri import default_source_id
from pipeline.synth import SynthWorld

CLIP_FRAMES, CLIP_FPS, CLIP_SIZE = 50, 25, (160, 96)
SHARED_VIDEOS = [  # name, frames, (width, height), fps
    ("solidWhiteRight.mp4", 221, (960, 540), 25.0),
    ("traffic-micro.mp4", 75, (640, 480), 25.0),
    ("highway_overhead.avi", 374, (320, 176), 30.0),
]


def _clip_images() -> list[np.ndarray]:
    """A moving gradient under fresh noise: every frame costs the encoder real bytes, so damage in the
    middle of a file lands in picture data."""
    w, h = CLIP_SIZE
    rng = np.random.default_rng(7)
    x = np.arange(w, dtype=np.int32)[None, :, None]
    y = np.arange(h, dtype=np.int32)[:, None, None]
    c = np.array([0, 60, 120], np.int32)
    return [((x * 2 + y + c + 5 * i) % 200 + rng.integers(0, 56, (h, w, 3))).astype(np.uint8)
            for i in range(CLIP_FRAMES)]


def _write(path: Path, images: list[np.ndarray], fmt: str, codec: str, options: dict | None = None) -> Path:
    with av.open(str(path), "w", format=fmt, options=options or {}) as container:
        stream = container.add_stream(codec, rate=CLIP_FPS)
        stream.width, stream.height = CLIP_SIZE
        stream.pix_fmt = "yuv420p"
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    images = _clip_images()
    with H264Writer(d / "moov_end.mp4", CLIP_FPS, CLIP_SIZE) as writer:
        for image in images:
            writer.write(image)
    return {
        "moov_end.mp4": d / "moov_end.mp4",
        "faststart.mp4": _write(d / "faststart.mp4", images, "mp4", "libx264", {"movflags": "faststart"}),
        "clip.mkv": _write(d / "clip.mkv", images, "matroska", "libx264"),
        "clip.avi": _write(d / "clip.avi", images, "avi", "mpeg4"),
    }


def _damaged(src: Path, dst: Path, keep: float | None = None, noise: int = 0, seed: int = 0) -> Path:
    """A copy of ``src`` cut to ``keep`` of its bytes, or with ``noise`` random bytes written over its middle."""
    data = bytearray(src.read_bytes())
    if keep is not None:
        data = data[: int(len(data) * keep)]
    if noise:
        mid = len(data) // 2
        noise = min(noise, len(data) - mid)
        data[mid:mid + noise] = np.random.default_rng(seed).integers(0, 256, noise, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def _read(uri: str | Path, limit: int | None = None, **options) -> tuple[list, object]:
    source = open_source(str(uri), options=SourceOptions(**options))
    frames = []
    try:
        for frame in source.frames(threading.Event()):
            frames.append(frame)
            if limit is not None and len(frames) == limit:
                break
    finally:
        source.close()
    return frames, source


def _read_until_error(uri: Path, backend: str = "auto") -> tuple[int, str]:
    """Frames delivered before the source raised, and its message (which must be one line)."""
    source = open_source(str(uri), options=SourceOptions(backend=backend))
    delivered = 0
    with pytest.raises(EdgeSegError) as err:
        for _ in source.frames(threading.Event()):
            delivered += 1
    source.close()
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{uri}: ")
    return delivered, message


def _assert_steady(frames: list, fps: float) -> None:
    pts = np.array([f.pts for f in frames])
    assert [f.index for f in frames] == list(range(len(frames)))
    assert pts[0] == 0.0 and np.all(np.diff(pts) > 0)
    assert np.allclose(np.diff(pts), 1 / fps, atol=1e-3)


# --- video files -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, count, size, fps", SHARED_VIDEOS)
def test_shared_videos_decode_every_frame_with_container_time(shared_dir: Path, name, count, size, fps) -> None:
    frames, source = _read(shared_dir / "data" / "videos" / name)
    assert type(source).__name__ == "VideoFileSource" and not source.live
    assert source.source_id == Path(name).stem and source.length == count and source.fps == fps
    assert len(frames) == count == source.stats.frames
    assert all(f.size == size and f.image.dtype == np.uint8 and f.source_id == source.source_id for f in frames)
    _assert_steady(frames, fps)


def test_opencv_backend_gives_the_same_frames_and_times(shared_dir: Path) -> None:
    path = shared_dir / "data" / "videos" / "highway_overhead.avi"
    pyav, _ = _read(path)
    cv, source = _read(path, backend="opencv")
    assert source.length == 374 and source.fps == 30.0
    assert len(cv) == len(pyav) == 374
    assert np.allclose([f.pts for f in cv], [f.pts for f in pyav], atol=1e-6)
    diff = np.abs(cv[100].image.astype(int) - pyav[100].image.astype(int))
    assert diff.mean() < 2  # same FFmpeg decoder; colour conversion may round differently


@pytest.mark.parametrize("name, length", [("moov_end.mp4", 50), ("faststart.mp4", 50), ("clip.mkv", None),
                                          ("clip.avi", 50)])
def test_written_clips_decode_whole(clips, name, length) -> None:
    frames, source = _read(clips[name])
    assert source.length == length  # Matroska stores no frame count
    assert len(frames) == CLIP_FRAMES and frames[0].size == CLIP_SIZE
    _assert_steady(frames, CLIP_FPS)


def test_frames_are_views_of_decoded_pictures_not_copies(clips) -> None:
    frames, _ = _read(clips["moov_end.mp4"], limit=2)
    assert all(not f.image.flags.owndata for f in frames)  # PyAV's bgr24 plane, handed on as is
    assert not np.shares_memory(frames[0].image, frames[1].image)


def test_stop_is_honoured_between_frames(clips) -> None:
    source = open_source(str(clips["clip.avi"]))
    stop = threading.Event()
    got = []
    for frame in source.frames(stop):
        got.append(frame.index)
        if len(got) == 5:
            stop.set()
    source.close()
    assert got == [0, 1, 2, 3, 4] and source.stats.frames == 5


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_loop_keeps_counting_and_time_keeps_rising(clips, backend) -> None:
    frames, source = _read(clips["clip.avi"], limit=2 * CLIP_FRAMES + 10, loop=True, backend=backend)
    assert source.length is None  # endless
    assert len(frames) == 2 * CLIP_FRAMES + 10
    _assert_steady(frames, CLIP_FPS)
    assert frames[CLIP_FRAMES].pts == pytest.approx(CLIP_FRAMES / CLIP_FPS)
    assert np.array_equal(frames[CLIP_FRAMES].image, frames[0].image)


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_mp4_cut_before_its_index_fails_at_open(clips, tmp_path, backend) -> None:
    path = _damaged(clips["moov_end.mp4"], tmp_path / "cut.mp4", keep=0.6)
    with pytest.raises(EdgeSegError, match=r"cut\.mp4: truncated: the mp4 has no index \(moov box\)"):
        open_source(str(path), options=SourceOptions(backend=backend))


@pytest.mark.parametrize("name, words", [
    ("faststart.mp4", r"truncated: decoded (\d+) of 50 frames"),
    ("clip.avi", r"truncated: decoded (\d+) of 50 frames"),
    ("clip.mkv", r"truncated: decoded (\d+) frames, [\d.]+ s of 2.00 s"),  # no count: the duration tells
])
def test_file_cut_mid_stream_is_reported_after_its_frames(clips, tmp_path, name, words) -> None:
    path = _damaged(clips[name], tmp_path / f"cut_{name}", keep=0.6)
    delivered, message = _read_until_error(path)
    match = re.search(words, message)
    assert match and int(match.group(1)) == delivered  # frames flowed as decoded, then the error
    assert 0 < delivered < 0.98 * CLIP_FRAMES


def test_opencv_backend_reports_a_cut_file_too(clips, tmp_path) -> None:
    path = _damaged(clips["clip.mkv"], tmp_path / "cut.mkv", keep=0.6)
    delivered, message = _read_until_error(path, backend="opencv")
    assert f"truncated: decoded {delivered} of 50 frames" in message  # OpenCV estimates a count


def test_random_bytes_in_h264_data_fail_at_that_frame(clips, tmp_path) -> None:
    path = _damaged(clips["moov_end.mp4"], tmp_path / "bad.mp4", noise=2000)
    delivered, message = _read_until_error(path)
    assert f"corrupt data at frame {delivered}: Invalid data found" in message
    assert 0 < delivered < CLIP_FRAMES


def test_random_bytes_that_end_an_mkv_early_are_reported(clips, tmp_path) -> None:
    """The Matroska demuxer loses its way in the damaged cluster and stops without an error."""
    path = _damaged(clips["clip.mkv"], tmp_path / "bad.mkv", noise=2000)
    delivered, message = _read_until_error(path)
    assert f"truncated: decoded {delivered} frames" in message and delivered < 0.98 * CLIP_FRAMES


@pytest.mark.parametrize("name, noise", [("clip.avi", 2000), ("moov_end.mp4", 16)])
def test_damage_ffmpeg_conceals_is_not_an_error(clips, tmp_path, name, noise) -> None:
    clean, _ = _read(clips[name])
    damaged, _ = _read(_damaged(clips[name], tmp_path / f"scratched_{name}", noise=noise))
    assert len(damaged) == CLIP_FRAMES
    assert any(not np.array_equal(a.image, b.image) for a, b in zip(clean, damaged))  # the damage was real


@pytest.mark.parametrize("content, words", [
    (b"", "empty file"),
    (b"hello, this is text\n" * 50, r"not a video, or truncated/corrupt \(Invalid data"),
    (np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes(), "not a video, or truncated"),
])
def test_files_that_are_not_video(tmp_path, content, words) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(EdgeSegError, match=rf"^{path}: {words}"):
        open_source(str(path))


def test_file_without_video_stream(tmp_path) -> None:
    path = tmp_path / "tone.wav"
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(EdgeSegError, match=rf"^{path}: no video stream$"):
        open_source(str(path))


def test_missing_files_and_file_uris(clips, tmp_path) -> None:
    with pytest.raises(EdgeSegError, match=r"nope\.mp4: no such file or directory$"):
        open_source(str(tmp_path / "nope.mp4"))
    frames, source = _read(f"file://{clips['clip.avi']}")
    assert len(frames) == CLIP_FRAMES and source.source_id == "clip"


# --- image folders -----------------------------------------------------------------------------

@pytest.fixture
def image_dir(tmp_path) -> Path:
    """Unpadded numbering, two formats, two sizes, a grey image, and a file that is no image."""
    d = tmp_path / "shots"
    d.mkdir()
    for n, (w, h) in [(1, (64, 48)), (2, (64, 48)), (10, (80, 40))]:
        cv2.imwrite(str(d / f"f{n}.png"), np.full((h, w, 3), n, np.uint8))
    cv2.imwrite(str(d / "f3.jpg"), np.full((48, 64), 200, np.uint8))
    (d / "notes.txt").write_text("not an image")
    return d


def test_folder_in_natural_order_with_each_image_its_size(image_dir) -> None:
    frames, source = _read(image_dir, fps=10)
    assert type(source).__name__ == "FolderSource" and source.source_id == "shots" and source.length == 4
    assert [f.image[0, 0, 0] for f in frames] == [1, 2, 200, 10]  # f1, f2, f3.jpg, f10
    assert [f.size for f in frames] == [(64, 48), (64, 48), (64, 48), (80, 40)]
    assert all(f.image.shape[2] == 3 for f in frames)  # the grey jpg comes as BGR
    assert [f.pts for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_folder_glob_default_rate_and_loop(image_dir) -> None:
    frames, source = _read(image_dir / "*.png")
    assert source.source_id == "shots" and len(frames) == 3
    assert [f.pts for f in frames] == pytest.approx([0, 1 / 30, 2 / 30])
    looped, source = _read(image_dir / "*.png", limit=7, loop=True)
    assert source.length is None
    assert [f.image[0, 0, 0] for f in looped] == [1, 2, 10, 1, 2, 10, 1]
    assert [f.pts for f in looped] == pytest.approx([i / 30 for i in range(7)])


def test_folder_image_that_does_not_decode(image_dir) -> None:
    (image_dir / "f4.png").write_bytes(b"\x89PNG broken")
    delivered, message = _read_until_error(image_dir)
    assert delivered == 3 and message == f"{image_dir}: cannot decode image {image_dir / 'f4.png'} (frame 3)"


def test_folder_errors(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgeSegError, match=r"empty: no images \(.png .jpg .jpeg .bmp\) found$"):
        open_source(str(tmp_path / "empty"))
    with pytest.raises(EdgeSegError, match=r"no images"):
        open_source(str(tmp_path / "*.png"))
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(EdgeSegError, match=r"fps must be a positive number, got 0"):
        open_source(str(tmp_path), options=SourceOptions(fps=0))


def test_camvid_folder(shared_dir: Path) -> None:
    frames, source = _read(shared_dir / "data" / "camvid" / "val" / "*.jpg", limit=5)
    assert source.length == 101 and source.source_id == "val"
    assert all(f.size == (480, 360) for f in frames)


# --- synthetic world ---------------------------------------------------------------------------

def test_synth_source_renders_the_world() -> None:
    frames, source = _read("synth://?seed=3&size=160x96&fps=10&frames=4")
    assert type(source).__name__ == "SynthSource" and source.source_id == "synth3"
    assert source.length == 4 and source.fps == 10.0 and len(frames) == 4
    world = SynthWorld(3, (160, 96), 10.0)
    assert all(np.array_equal(f.image, world.render(f.index).frame.image) for f in frames)
    assert [f.pts for f in frames] == pytest.approx([0, 0.1, 0.2, 0.3])
    assert all(f.source_id == "synth3" for f in frames)


def test_synth_endless_and_loop() -> None:
    frames, source = _read("synth://?size=64x48&frames=0", limit=5)
    assert source.length is None and len(frames) == 5 and source.source_id == "synth0"
    looped, source = _read("synth://?seed=1&size=64x48&fps=20&frames=3", limit=7, loop=True)
    assert [f.index for f in looped] == list(range(7)) and source.length is None
    assert [f.pts for f in looped] == pytest.approx([i / 20 for i in range(7)])
    assert np.array_equal(looped[3].image, looped[0].image)


@pytest.mark.parametrize("uri, words", [
    ("synth://?bogus=1", "unknown key 'bogus' (known: seed, size, fps, frames)"),
    ("synth://?seed=-1", "bad value for 'seed': '-1' (expected an integer >= 0)"),
    ("synth://?size=640", "bad value for 'size': '640'"),
    ("synth://?size=8x8", "bad value for 'size': '8x8'"),
    ("synth://?fps=0", "bad value for 'fps': '0'"),
    ("synth://?fps=nan", "bad value for 'fps': 'nan'"),
    ("synth://?frames=1.5", "bad value for 'frames': '1.5'"),
    ("synth://?seed=1&seed=2", "key 'seed' given twice"),
    ("synth://?seed", "malformed query 'seed'"),
    ("synth://3", "settings go in the query"),
])
def test_synth_uri_errors_name_uri_and_key(uri, words) -> None:
    with pytest.raises(EdgeSegError) as err:
        open_source(uri)
    assert str(err.value).startswith(f"{uri}: {words}") and "\n" not in str(err.value)


# --- cameras -----------------------------------------------------------------------------------

@pytest.mark.parametrize("uri, words", [("/dev/video97", "no such device"),
                                        ("camera:97", "cannot open the camera")])
def test_missing_camera_is_one_line(uri, words) -> None:
    with pytest.raises(EdgeSegError, match=rf"^{uri}: {words}"):
        open_source(uri)


def test_camera_frames_when_one_is_plugged_in() -> None:
    if not Path("/dev/video0").exists():
        pytest.skip("no camera at /dev/video0")
    frames, source = _read("/dev/video0", limit=5)
    assert source.live and source.source_id == "camera0" and source.length is None
    assert len(frames) == 5 and frames[0].pts == 0.0
    assert np.all(np.diff([f.pts for f in frames]) > 0)


# --- dispatch ----------------------------------------------------------------------------------

def test_unknown_scheme() -> None:
    with pytest.raises(EdgeSegError, match=r"^http://example.com/a.mp4: unknown scheme 'http://'"):
        open_source("http://example.com/a.mp4")


def test_default_ids_leave_out_credentials_and_wildcards() -> None:
    assert default_source_id("rtsp://user:secret@cam.local:8554/live/main", "rtsp") == "cam_local_live_main"
    assert default_source_id("/data/runs/frames_*/*.png", "folder") == "runs"
    assert default_source_id("/videos/my clip (2).mp4", "file") == "my_clip_2"
    assert default_source_id("camera:2", "camera") == "camera2"
    assert default_source_id("/dev/video1", "camera") == "camera1"


def test_rtsp_goes_to_the_rtsp_source() -> None:
    pytest.importorskip("pipeline.sources.rtsp", reason="the RTSP source module is absent")
    source = open_source("rtsp://127.0.0.1:9/cam/1", options=SourceOptions(reconnect_attempts=1))
    assert type(source).__name__ == "RtspSource" and source.source_id == "127_0_0_1_cam_1" and source.live
    source.close()


def test_gstreamer_backend_goes_to_the_gstreamer_source(clips) -> None:
    gstreamer = pytest.importorskip("pipeline.sources.gstreamer", reason="the GStreamer source module is absent")
    try:
        gstreamer.gst()
    except EdgeSegError as e:
        pytest.skip(f"GStreamer is not usable here: {e}")
    source = open_source(str(clips["clip.avi"]), options=SourceOptions(backend="gstreamer"))
    assert type(source).__name__ == "GstSource" and source.source_id == "clip"
    source.close()
