"""Sinks and annotators: real files written, then read back with independent decoders."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest

from pipeline.annotate import InfoOverlay, SemanticAnnotator
from pipeline.labels import CAMVID
from pipeline.sinks import JsonlSink, MaskSink, VideoSink, write_palette_png
from pipeline.sinks.jsonl import SCHEMA_KEYS
from pipeline.sinks.masks import mask_name
from pipeline.types import Frame, FrameResult, SemanticMap

PALETTE = np.asarray(CAMVID.palette, np.uint8)


def result(labels: np.ndarray, index: int = 0, grey: int = 100, source_id: str = "cam0") -> FrameResult:
    h, w = labels.shape
    frame = Frame(np.full((h, w, 3), grey, np.uint8), index=index, pts=index / 30, source_id=source_id)
    return FrameResult(frame, SemanticMap(labels.astype(np.uint8), CAMVID.classes, PALETTE),
                       timings_ms={"inference": 12.5})


def read_pal8(path):
    """Indices and RGB palette as FFmpeg's PNG decoder (through PyAV) sees them."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        assert frame.format.name == "pal8"
        indices, argb = frame.to_ndarray()
    return indices, argb[:, 1:]


def test_palette_png_round_trips(tmp_path, rng):
    labels = rng.integers(0, 11, (37, 53)).astype(np.uint8)  # odd sizes: no row-alignment luck
    path = write_palette_png(tmp_path / "m.png", labels, PALETTE)
    indices, palette = read_pal8(path)
    np.testing.assert_array_equal(indices, labels)
    np.testing.assert_array_equal(palette[:11], PALETTE)
    # OpenCV (libpng) expands the palette: IMREAD_UNCHANGED gives the class colours in BGR, not indices.
    colours = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert colours.shape == (37, 53, 3)
    np.testing.assert_array_equal(colours, PALETTE[labels][..., ::-1])


def test_mask_sink_names_and_content(tmp_path, rng):
    labels = rng.integers(0, 11, (18, 32)).astype(np.uint8)
    with MaskSink(tmp_path / "masks") as sink:
        sink.write(result(labels, index=7, source_id="rtsp://cam/1"))
        sink.write(FrameResult(Frame(np.zeros((4, 4, 3), np.uint8), 8, 0.3)))  # no semantic map: skipped
    files = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert files == ["rtsp_cam_1_000007_labelIds.png"]
    np.testing.assert_array_equal(read_pal8(tmp_path / "masks" / files[0])[0], labels)
    assert mask_name("0", 12) == "0_000012_labelIds.png"


def test_jsonl_lines_are_flushed_and_follow_the_schema(tmp_path):
    """Coverage: a 4x5 map with 10 Road (3) and 5 Sky (0) and 5 Car (8) pixels -> 0.5 / 0.25 / 0.25."""
    labels = np.full((4, 5), 3, np.uint8)
    labels[0] = 0
    labels[1] = 8
    path = tmp_path / "out.jsonl"
    with JsonlSink(path, "tiny") as sink:
        sink.write(result(labels, index=0))
        sink.write(result(labels, index=1))
        written = path.read_text().splitlines()  # before close: each line is flushed as written
    assert len(written) == 2
    first = json.loads(written[0])
    assert tuple(first) == SCHEMA_KEYS
    assert first["coverage"] == {"Sky": 0.25, "Road": 0.5, "Car": 0.25}
    assert (first["width"], first["height"], first["model"], first["source_id"]) == (5, 4, "tiny", "cam0")
    assert json.loads(written[1])["frame"] == 1 and json.loads(written[1])["pts"] == pytest.approx(1 / 30, abs=1e-6)


def test_semantic_annotator_blends_palette_colours():
    """alpha 0.5 over grey 100: Road RGB (128, 64, 128) -> BGR (128, 64, 128) / 2 + 50 = (114, 82, 114);
    label 11 (a void channel past the 11-colour palette) blends with black: 100 / 2 = 50."""
    labels = np.array([[3, 11]], np.uint8)
    scene = result(labels).frame.image.copy()
    out = SemanticAnnotator(alpha=0.5).annotate(scene, result(labels))
    assert out is scene
    assert out[0, 0].tolist() == [114, 82, 114]
    assert out[0, 1].tolist() == [50, 50, 50]


def test_info_overlay_lists_top_classes_and_stays_in_its_corner():
    labels = np.full((120, 200), 3, np.uint8)  # Road 75 %
    labels[:30] = 0  # Sky 25 %
    res = result(labels, index=42)
    overlay = InfoOverlay(top=3)
    rows = overlay.lines(res, fps=25.0)
    assert rows[0][0] == "frame 42  25.0 fps"
    assert [text for text, _ in rows[1:]] == ["Road 75%", "Sky 25%"]
    assert rows[1][1] == (128, 64, 128)  # Road's swatch in BGR
    scene = overlay.annotate(res.frame.image.copy(), res)
    changed = np.argwhere((scene != 100).any(axis=2))
    assert changed.size and changed[:, 0].max() < 3 * overlay.line + 6 and changed[:, 1].max() < 150


def test_video_sink_writes_annotated_h264(tmp_path):
    """Left half Road, right half Sky, blended at alpha 1: the decoded video shows the two class colours
    (within H.264's quantisation error) in every frame."""
    labels = np.zeros((64, 96), np.uint8)
    labels[:, :48] = 3
    path = tmp_path / "v.mp4"
    with VideoSink(path, fps=25.0, annotators=[SemanticAnnotator(alpha=1.0)]) as sink:
        for i in range(5):
            sink.write(result(labels, index=i))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    assert len(frames) == 5 and frames[0].shape == (64, 96, 3)
    road_bgr, sky_bgr = np.array([128, 64, 128]), np.array([128, 128, 128])
    for f in frames:
        assert np.abs(f[8:56, 8:40].reshape(-1, 3).mean(0) - road_bgr).max() < 6
        assert np.abs(f[8:56, 56:88].reshape(-1, 3).mean(0) - sky_bgr).max() < 6


def test_video_sink_without_frames_writes_nothing(tmp_path):
    with VideoSink(tmp_path / "v.mp4", fps=25.0) as sink:
        assert sink.frames_written == 0
    assert not (tmp_path / "v.mp4").exists()
