"""Sinks: real files written, then read back with independent decoders (PyAV/FFmpeg, libpng through
OpenCV, pycocotools), on hand-made results and on the synthetic world's exact ground truth."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import av
import cv2
import numpy as np
import pytest

from pipeline.analytics.annotate import LineZoneAnnotator
from pipeline.annotate import InfoOverlay, InstanceAnnotator, SemanticAnnotator
from pipeline.errors import EdgeSegError
from pipeline.io import rle
from pipeline.io.video_writer import H264Writer, Mp4vWriter, has_libx264, open_video_writer
from pipeline.labels import CAMVID
from pipeline.sinks import JsonlSink, MaskSink, SinkGroup, VideoSink, write_palette_png
from pipeline.sinks.jsonl import SCHEMA_KEYS
from pipeline.sinks.masks import mask_name
from pipeline.synth import SynthWorld
from pipeline.types import Frame, FrameResult, Instances, SemanticMap

PALETTE = np.asarray(CAMVID.palette, np.uint8)
SIZE = (640, 360)
needs_x264 = pytest.mark.skipif(not has_libx264(), reason="this PyAV has no libx264 encoder")


@pytest.fixture(scope="module")
def synth_frames():
    """Five frames of seed 7 at 640x360, 12-16 objects each: cars, cyclists, pedestrians, some cut by the
    frame's edge, some occluding others, tracks entering and leaving."""
    world = SynthWorld(7, size=SIZE)
    return [world.render(i) for i in range(0, 50, 10)]


def synth_result(f, source_id: str = "synth_7") -> FrameResult:
    frame = dataclasses.replace(f.frame, source_id=source_id)
    return FrameResult(frame, SemanticMap(f.semantic, CAMVID.classes, PALETTE), f.to_instances(),
                       timings_ms={"inference": 20.0})


def decode_video(path) -> tuple[str, list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.name, [f.to_ndarray(format="bgr24") for f in container.decode(stream)]


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
    assert mask_name("0", 12, "instanceIds") == "0_000012_instanceIds.png"


def test_instance_id_pngs_read_back_as_uint16_cityscapes_ids(tmp_path, synth_frames):
    """Each pixel of a track's mask reads class * 1000 + track id (Car 8 -> 8000 + id), background 0;
    with no tracker, instance numbers are list positions + 1. The label map is written beside it."""
    with MaskSink(tmp_path) as sink:
        for f in synth_frames[:2]:
            sink.write(synth_result(f, source_id="cam:0"))
        untracked = dataclasses.replace(synth_frames[2].to_instances(), track_ids=None)
        sink.write(FrameResult(dataclasses.replace(synth_frames[2].frame, source_id="cam:0"), instances=untracked))
    for f in synth_frames[:2]:
        value = np.zeros(f.instance_ids.max() + 1, np.uint16)  # track id -> expected pixel value
        for o in f.objects:
            value[o.track_id] = o.label * 1000 + o.track_id
        ids = cv2.imread(str(tmp_path / f"cam_0_{f.frame.index:06d}_instanceIds.png"), cv2.IMREAD_UNCHANGED)
        assert ids.dtype == np.uint16 and ids.shape == (SIZE[1], SIZE[0])
        np.testing.assert_array_equal(ids, value[f.instance_ids])
        assert (tmp_path / f"cam_0_{f.frame.index:06d}_labelIds.png").exists()
    f = synth_frames[2]
    ids = cv2.imread(str(tmp_path / f"cam_0_{f.frame.index:06d}_instanceIds.png"), cv2.IMREAD_UNCHANGED)
    for k, o in enumerate(f.objects):
        assert set(np.unique(ids[f.instance_ids == o.track_id])) == {o.label * 1000 + k + 1}
    assert not (tmp_path / f"cam_0_{f.frame.index:06d}_labelIds.png").exists()  # no semantic result


def test_instance_ids_higher_score_wins_overlaps_and_ids_wrap(tmp_path):
    """Two overlapping squares: the overlap takes the more confident instance's id, whichever comes first in
    the list; track 1007 writes instance number 7. An empty result writes an all-zero map."""
    masks = np.zeros((2, 20, 30), bool)
    masks[0, 2:12, 2:12] = True
    masks[1, 6:16, 6:16] = True
    frame = Frame(np.zeros((20, 30, 3), np.uint8), 3, 0.1)
    with MaskSink(tmp_path) as sink:
        for i, scores in enumerate(([0.9, 0.3], [0.3, 0.9])):
            sink.write(FrameResult(dataclasses.replace(frame, index=i), instances=Instances(
                np.array([8, 9], np.int32), np.array(scores, np.float32), np.zeros((2, 4), np.float32), masks,
                CAMVID.classes, np.array([5, 1007]))))
        sink.write(FrameResult(dataclasses.replace(frame, index=2), instances=Instances.empty(20, 30, CAMVID.classes)))
    read = [cv2.imread(str(tmp_path / mask_name("0", i, "instanceIds")), cv2.IMREAD_UNCHANGED) for i in range(3)]
    for ids, overlap in zip(read, (8005, 9007)):
        assert (ids[2, 2], ids[15, 15], ids[8, 8], ids[0, 0]) == (8005, 9007, overlap, 0)
    assert read[2].dtype == np.uint16 and not read[2].any()


def test_instance_classes_past_16_bits_are_one_line_errors(tmp_path):
    names = tuple(f"c{i}" for i in range(80))
    big = Instances(np.array([70], np.int32), np.ones(1, np.float32), np.zeros((1, 4), np.float32),
                    np.ones((1, 4, 4), bool), names)
    with pytest.raises(EdgeSegError, match=r"0_000000_instanceIds\.png: frame 0: class 70 \(c70\) is past 64"):
        MaskSink(tmp_path).write(FrameResult(Frame(np.zeros((4, 4, 3), np.uint8), 0, 0.0), instances=big))


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
    assert first["instances"] == [] and first["counts"] == {}  # no instance result: the keys are still there


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside pycocotools, numpy 2
def test_jsonl_instances_decode_to_the_ground_truth(tmp_path, synth_frames):
    """Every instance of every frame: pycocotools decodes its RLE to exactly the synthetic world's mask
    for that track; class, box, track id and per-class counts are the ground truth's."""
    mask_api = pytest.importorskip("pycocotools.mask", reason="pycocotools cross-checks the RLE")
    path = tmp_path / "out.jsonl"
    with JsonlSink(path, "edgeseg_road_s") as sink:
        for f in synth_frames:
            sink.write(synth_result(f))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == len(synth_frames)
    for rec, f in zip(records, synth_frames):
        assert tuple(rec) == SCHEMA_KEYS and rec["frame"] == f.frame.index and rec["model"] == "edgeseg_road_s"
        assert rec["counts"] == dict(Counter(CAMVID.classes[o.label] for o in f.objects))
        assert [i["track_id"] for i in rec["instances"]] == [o.track_id for o in f.objects]
        for inst, obj in zip(rec["instances"], f.objects):
            assert list(inst) == ["class", "score", "box", "track_id", "mask"]
            assert inst["class"] == CAMVID.classes[obj.label] and inst["score"] == 1.0
            assert inst["box"] == [round(float(v), 1) for v in obj.box]
            assert inst["mask"]["size"] == [SIZE[1], SIZE[0]]
            truth = f.instance_ids == obj.track_id
            ref = mask_api.decode({"size": inst["mask"]["size"], "counts": inst["mask"]["counts"].encode()})
            np.testing.assert_array_equal(ref.astype(bool), truth)
            np.testing.assert_array_equal(rle.decode(inst["mask"]), truth)


def test_jsonl_masks_are_exact_outside_their_boxes_and_without_tracks(tmp_path, synth_frames):
    """A model's box need not contain its mask: the RLE still holds every pixel. Without a tracker there
    is no track_id key; fractional scores and boxes are rounded (4 and 1 decimals)."""
    f = synth_frames[1]
    truth = f.to_instances()
    n = len(truth)
    odd = dataclasses.replace(truth, track_ids=None, boxes=np.tile(np.float32([10.04, 20.06, 30.56, 40.0]), (n, 1)),
                              scores=np.linspace(0.5, 0.9, n, dtype=np.float32) + np.float32(1e-5))
    path = tmp_path / "out.jsonl"
    with JsonlSink(path, "m") as sink:
        sink.write(FrameResult(f.frame, instances=odd))
        sink.write(FrameResult(f.frame, instances=Instances.empty(SIZE[1], SIZE[0], CAMVID.classes)))
    rec, empty = (json.loads(line) for line in path.read_text().splitlines())
    assert [list(i) for i in rec["instances"]] == [["class", "score", "box", "mask"]] * n
    assert rec["instances"][0]["box"] == [10.0, 20.1, 30.6, 40.0]
    assert [i["score"] for i in rec["instances"]] == [round(float(s), 4) for s in odd.scores]
    for inst, mask in zip(rec["instances"], truth.masks):
        np.testing.assert_array_equal(rle.decode(inst["mask"]), mask)
    assert rec["coverage"] == {} and sum(rec["counts"].values()) == n
    assert (empty["instances"], empty["counts"]) == ([], {})


@needs_x264
def test_video_sink_writes_annotated_h264(tmp_path):
    """Left half Road, right half Sky, blended at alpha 1: the decoded video shows the two class colours
    (within H.264's quantisation error) in every frame."""
    labels = np.zeros((64, 96), np.uint8)
    labels[:, :48] = 3
    path = tmp_path / "v.mp4"
    with VideoSink(path, fps=25.0, annotators=[SemanticAnnotator(alpha=1.0)]) as sink:
        for i in range(5):
            sink.write(result(labels, index=i))
    codec, frames = decode_video(path)
    assert codec == "h264" and len(frames) == 5 and frames[0].shape == (64, 96, 3)
    road_bgr, sky_bgr = np.array([128, 64, 128]), np.array([128, 128, 128])
    for f in frames:
        assert np.abs(f[8:56, 8:40].reshape(-1, 3).mean(0) - road_bgr).max() < 6
        assert np.abs(f[8:56, 56:88].reshape(-1, 3).mean(0) - sky_bgr).max() < 6


def test_video_sink_without_frames_writes_nothing(tmp_path):
    with VideoSink(tmp_path / "v.mp4", fps=25.0) as sink:
        assert sink.frames_written == 0
    assert not (tmp_path / "v.mp4").exists()


@needs_x264
def test_video_sink_outlines_show_along_the_mask_borders(tmp_path, synth_frames):
    """The decoded H.264 frames differ from the source frames strongly on the masks' border pixels (drawn
    in each track's colour) and only by compression noise far from any border."""
    annotator = InstanceAnnotator(labels=False)
    path = tmp_path / "v.mp4"
    with VideoSink(path, fps=30.0, annotators=[annotator]) as sink:
        for f in synth_frames:
            sink.write(synth_result(f))
    codec, frames = decode_video(path)
    assert codec == "h264" and len(frames) == len(synth_frames)
    for decoded, f in zip(frames, synth_frames):
        edge = np.zeros(f.instance_ids.shape, np.uint8)
        for o in f.objects:
            m = (f.instance_ids == o.track_id).view(np.uint8)
            edge |= m & ~cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
        near = cv2.dilate(edge, np.ones((9, 9), np.uint8)).astype(bool)
        diff = np.abs(decoded.astype(np.int16) - f.frame.image).mean(axis=2)
        assert diff[edge.astype(bool)].mean() > 60  # measured 78-88
        assert diff[~near].mean() < 6  # measured 4.0-4.3, as encoding the plain frames gives
        biggest = max(f.objects, key=lambda o: (f.instance_ids == o.track_id).sum())
        m = (f.instance_ids == biggest.track_id).view(np.uint8)
        border = (m & ~cv2.erode(m, np.ones((3, 3), np.uint8))).astype(bool)
        colour = annotator.colours[biggest.track_id % len(annotator.colours)]
        assert np.abs(np.median(decoded[border], axis=0) - colour).max() < 40


def test_video_sink_defaults_blend_outline_and_overlay():
    assert [type(a) for a in VideoSink("unused.mp4", 30.0).annotators] == [SemanticAnnotator, InstanceAnnotator,
                                                                          LineZoneAnnotator, InfoOverlay]


@pytest.mark.parametrize("kind", ["sink", "mp4v"])
def test_close_after_an_exception_leaves_a_playable_mp4(tmp_path, synth_frames, kind):
    """An exception mid-stream unwinds through ``with``: every frame written before it decodes, including
    those the encoder was still holding (x264's lookahead)."""
    if kind == "sink" and not has_libx264():
        pytest.skip("this PyAV has no libx264 encoder")
    path = tmp_path / f"{kind}.mp4"
    with pytest.raises(RuntimeError, match="camera unplugged"):
        if kind == "sink":
            with VideoSink(path, fps=30.0) as sink:
                for f in synth_frames[:4]:
                    sink.write(synth_result(f))
                raise RuntimeError("camera unplugged")
        else:
            with Mp4vWriter(path, 30.0, SIZE) as writer:
                for f in synth_frames[:4]:
                    writer.write(f.frame.image)
                raise RuntimeError("camera unplugged")
    codec, frames = decode_video(path)
    assert codec == ("h264" if kind == "sink" else "mpeg4")
    assert len(frames) == 4 and frames[0].shape == (SIZE[1], SIZE[0], 3)


def test_mp4v_fallback_writes_what_pyav_decodes(tmp_path, synth_frames):
    """OpenCV's mp4v writer, as used where PyAV has no libx264: PyAV reads back every frame, close to the
    source (MPEG-4 Part 2 at OpenCV's default bit rate)."""
    path = tmp_path / "fallback.mp4"
    with Mp4vWriter(path, 30.0, SIZE) as writer:
        for f in synth_frames:
            writer.write(f.frame.image)
        assert writer.frames_written == len(synth_frames)
    codec, frames = decode_video(path)
    assert codec == "mpeg4" and len(frames) == len(synth_frames)
    for decoded, f in zip(frames, synth_frames):
        assert np.abs(decoded.astype(np.int16) - f.frame.image).mean() < 12


@pytest.mark.parametrize("writer", [Mp4vWriter, H264Writer])
def test_writers_refuse_odd_and_mismatched_frames(tmp_path, writer):
    """OpenCV alone would silently crop an odd size and silently drop a frame of the wrong size."""
    if writer is H264Writer and not has_libx264():
        pytest.skip("this PyAV has no libx264 encoder")
    with pytest.raises(EdgeSegError, match="needs an even frame size, got 97x64"):
        writer(tmp_path / "odd.mp4", 30.0, (97, 64))
    with writer(tmp_path / "v.mp4", 30.0, (96, 64)) as w, \
            pytest.raises(EdgeSegError, match=r"v\.mp4: frame 0 has shape \(64, 98, 3\) uint8, expected \(64, 96, 3\)"):
        w.write(np.zeros((64, 98, 3), np.uint8))


def test_the_factory_picks_h264_exactly_when_pyav_has_libx264(tmp_path):
    try:
        av.codec.Codec("libx264", "w")
        expected = H264Writer
    except av.codec.codec.UnknownCodecError:
        expected = Mp4vWriter
    with open_video_writer(tmp_path / "v.mp4", 30.0, (64, 48)) as w:
        assert type(w) is expected


class BrokenSink:
    """A sink whose output fails on closing (a full disk, a dropped network share)."""

    def write(self, result: FrameResult) -> None:
        pass

    def __enter__(self) -> BrokenSink:
        return self

    def __exit__(self, *exc: object) -> None:
        raise OSError("disk full")


def test_sink_group_feeds_every_sink_and_closes_them_all(tmp_path, synth_frames):
    """An exception in the loop, then a sink that fails to close: the group still finalises the others
    (the mp4 decodes, every JSON line is there, every mask file), and the first error is not lost."""
    sinks = [VideoSink(tmp_path / "v.mp4", 30.0, annotators=[]), JsonlSink(tmp_path / "r.jsonl", "m"),
             MaskSink(tmp_path / "masks"), BrokenSink()]
    with pytest.raises(OSError, match="disk full") as raised, SinkGroup(sinks) as group:
        for f in synth_frames[:3]:
            group.write(synth_result(f))
        raise RuntimeError("camera unplugged")
    assert isinstance(raised.value.__context__, RuntimeError)
    _, frames = decode_video(tmp_path / "v.mp4")
    assert len(frames) == 3
    assert [json.loads(line)["frame"] for line in (tmp_path / "r.jsonl").read_text().splitlines()] == [0, 10, 20]
    assert len(list((tmp_path / "masks").glob("*_instanceIds.png"))) == 3
