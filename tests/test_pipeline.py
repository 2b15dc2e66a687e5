"""The streaming pipeline end to end: real sources, real ONNX Runtime, real sinks, files read back."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml

from pipeline.errors import EdgeSegError
from pipeline.io.video_writer import H264Writer
from pipeline.modelcard import DEFAULT_SEMANTIC_MODEL, find_card
from pipeline.stream.config import load_config
from pipeline.stream.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]


def make_config(tmp_path: Path, sources, model: str, **extra) -> Path:
    data = {"sources": sources, "models": {"semantic": {"model": model, "threads": 1}},
            "sinks": {"video": {}, "jsonl": {}, "masks": {}}, "out": str(tmp_path / "out"), **extra}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def edgeseg(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_results_iterator_and_every_sink(tmp_path, tiny_card):
    config = make_config(tmp_path, [{"uri": "synth://?seed=3&size=320x180&frames=12", "id": "cam"}],
                         str(tiny_card.path))
    pipeline = Pipeline.from_config(config)
    results = list(pipeline.results())
    assert [r.frame.index for r in results] == list(range(12))
    assert all(r.frame.source_id == "cam" and r.semantic.labels.shape == (180, 320) for r in results)
    assert all({"preprocess", "inference", "decode"} <= set(r.timings_ms) for r in results)
    assert np.all(np.diff([r.frame.pts for r in results]) > 0)
    out = tmp_path / "out"
    assert decoded_frames(out / "cam.mp4") == 12
    records = jsonl(out / "cam.jsonl")
    assert [r["frame"] for r in records] == list(range(12)) and {r["source_id"] for r in records} == {"cam"}
    assert len(list((out / "masks").glob("cam_*_labelIds.png"))) == 12
    report = pipeline.report()
    assert report.frames == 12 and report.error is None and not report.stopped_early
    assert [snap.name for _, snap in report.stages] == ["source", "preprocess", "inference", "decode", "analytics",
                                                         "sinks"]
    assert [snap.frames_out for _, snap in report.stages] == [12] * 6


def test_several_sources_each_tagged_and_in_order(tmp_path, tiny_card):
    config = make_config(tmp_path, [{"uri": "synth://?seed=1&size=320x180&frames=6", "id": "a"},
                                    {"uri": "synth://?seed=2&size=256x144&frames=9", "id": "b"}], str(tiny_card.path))
    results = list(Pipeline.from_config(config).results())
    for source_id, n, shape in (("a", 6, (180, 320)), ("b", 9, (144, 256))):
        mine = [r for r in results if r.frame.source_id == source_id]
        assert [r.frame.index for r in mine] == list(range(n))
        assert {r.semantic.labels.shape for r in mine} == {shape}
        assert decoded_frames(tmp_path / "out" / f"{source_id}.mp4") == n
        assert len(jsonl(tmp_path / "out" / f"{source_id}.jsonl")) == n


def test_leaving_the_loop_early_drains_and_closes_the_sinks(tmp_path, tiny_card):
    config = make_config(tmp_path, ["synth://?seed=4&size=320x180&frames=500"], str(tiny_card.path))
    pipeline = Pipeline.from_config(config)
    for result in pipeline.results():
        if result.frame.index == 4:
            break
    lines = jsonl(tmp_path / "out" / "synth4.jsonl")
    assert 5 <= len(lines) < 500  # what was in flight was written too, then the source stopped
    assert decoded_frames(tmp_path / "out" / "synth4.mp4") == len(lines)
    assert pipeline.report().stopped_early


def test_a_failing_stage_names_itself_and_the_frame_and_closes_the_sinks(tmp_path, tiny_card):
    """Images of another size halfway through a folder: the H.264 sink cannot take them."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(5):
        size = (320, 180) if i < 3 else (200, 100)
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((size[1], size[0], 3), 40 * i, np.uint8))
    config = make_config(tmp_path, [{"uri": str(folder), "id": "imgs"}], str(tiny_card.path))
    pipeline = Pipeline.from_config(config)
    with pytest.raises(EdgeSegError, match=r"stage 'sinks' failed on frame 3 of source 'imgs': .*imgs\.mp4: frame 3 has shape \(100, 200, 3\)") as info:
        list(pipeline.results())
    assert "\n" not in str(info.value)
    assert decoded_frames(tmp_path / "out" / "imgs.mp4") == 3  # finalised and playable
    assert pipeline.report().error == str(info.value)


def test_a_source_failure_mid_run(tmp_path, tiny_card):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((180, 320, 3), 50, np.uint8))
    (folder / "004.png").write_bytes(b"not a png")
    config = make_config(tmp_path, [{"uri": str(folder), "id": "imgs"}], str(tiny_card.path))
    with pytest.raises(EdgeSegError, match=r"stage 'source' failed on frame 4 of source 'imgs': .*004\.png"):
        list(Pipeline.from_config(config).results())
    assert len(jsonl(tmp_path / "out" / "imgs.jsonl")) == 4
    assert decoded_frames(tmp_path / "out" / "imgs.mp4") == 4


def test_drop_oldest_bounds_the_backlog_and_counts_drops(tmp_path):
    """A source faster than the model with the live-source policy: frames are dropped, never queued up."""
    try:
        find_card(DEFAULT_SEMANTIC_MODEL)
    except EdgeSegError as e:
        pytest.skip(f"the shipped model is missing: {e}")
    config = make_config(tmp_path, [{"uri": "synth://?seed=5&size=320x180&frames=60", "id": "live",
                                     "buffer": {"policy": "drop_oldest", "size": 1}}], DEFAULT_SEMANTIC_MODEL)
    pipeline = Pipeline.from_config(config)
    results = list(pipeline.results())
    report = pipeline.report()
    drops = report.sources[0].drops
    assert drops > 0 and len(results) + drops == 60
    indices = [r.frame.index for r in results]
    assert indices == sorted(indices) and indices[-1] == 59  # newest frames kept, order kept


@pytest.mark.parametrize("threshold, all_void", [(1.0, True), (0.0, False)])
def test_confidence_threshold_turns_doubtful_pixels_void(tmp_path, tiny_card, threshold, all_void):
    config = make_config(tmp_path, ["synth://?seed=3&size=160x90&frames=2"], str(tiny_card.path))
    pipeline = Pipeline(load_config(config, [f"models.semantic.threshold={threshold}"]))
    for result in pipeline.results():
        assert np.all(result.semantic.labels == 255) == all_void
        assert (result.semantic.coverage == {}) == all_void


def test_sigterm_mid_file_leaves_a_playable_video_and_whole_json_lines(tmp_path):
    try:
        find_card(DEFAULT_SEMANTIC_MODEL)
    except EdgeSegError as e:
        pytest.skip(f"the shipped model is missing: {e}")
    clip = tmp_path / "clip.mp4"
    with H264Writer(clip, 25.0, (320, 180)) as writer:
        for i in range(400):
            image = np.zeros((180, 320, 3), np.uint8)
            image[:, (i * 3) % 320:] = (90, 140, 200)
            writer.write(image)
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", "video_file", "--source", str(clip),
                                "--out", str(out), "--set", "models.semantic.threads=1"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = out / "clip.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not lines.exists() or len(lines.read_text().splitlines()) < 5):
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "stopped early" in stdout
    records = jsonl(lines)  # every line parses
    assert 5 <= len(records) < 400
    assert [r["frame"] for r in records] == list(range(len(records)))
    assert decoded_frames(out / "clip.mp4") == len(records)
    assert len(list((out / "masks").glob("*_labelIds.png"))) == len(records)


@pytest.mark.parametrize("args, message", [
    (["run", "video_file", "--source", "no/such/clip.mp4"], "no/such/clip.mp4"),
    (["run", "no_such_config.yaml"], "no_such_config.yaml: config not found"),
    (["run", "demo", "--set", "models.semantic.treshold=0.2"], "key 'models.semantic.treshold'"),
    (["run", "demo", "--source", "ftp://camera/stream"], "ftp://camera/stream"),
])
def test_user_mistakes_are_one_line_and_exit_non_zero(args, message):
    done = edgeseg(*args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_truncated_video_is_a_one_line_error(tmp_path):
    clip = tmp_path / "cut.mp4"
    with H264Writer(clip, 25.0, (160, 96)) as writer:
        for i in range(50):
            writer.write(np.full((96, 160, 3), i * 4, np.uint8))
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) * 6 // 10])
    done = edgeseg("run", "video_file", "--source", str(clip), "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "cut.mp4" in done.stderr, done.stderr


@pytest.mark.slow
def test_solid_white_right_every_frame(tmp_path, shared_dir):
    """The issue's must-show: 221 JSON lines and 221 video frames, with a summary."""
    video = shared_dir / "data" / "videos" / "solidWhiteRight.mp4"
    done = edgeseg("run", "configs/video_file.yaml", "--source", str(video), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "221 frames in" in done.stdout and "end-to-end" in done.stdout
    assert len(jsonl(tmp_path / "solidWhiteRight.jsonl")) == 221
    assert decoded_frames(tmp_path / "solidWhiteRight.mp4") == 221


def test_an_unwritable_output_of_a_later_source_is_one_line_before_anything_runs(tmp_path, tiny_card):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b_masks").write_text("a file where the mask directory of source b should be")
    config = make_config(tmp_path, [{"uri": "synth://?seed=1&size=160x90&frames=3", "id": "a"},
                                    {"uri": "synth://?seed=2&size=160x90&frames=3", "id": "b"}], str(tiny_card.path))
    pipeline = Pipeline(load_config(config, ["sinks.masks.dir={out}/{source}_masks"]))
    with pytest.raises(EdgeSegError, match=r"b_masks: cannot create mask directory") as info:
        list(pipeline.results())
    assert "\n" not in str(info.value)
    assert (tmp_path / "out" / "a.jsonl").read_text() == ""  # source a's sinks were opened, then closed
    assert pipeline.report().frames == 0
