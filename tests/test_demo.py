"""`edgeseg demo` end to end, as a user runs it: a subprocess, then every output file read back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import pytest

from pipeline.errors import EdgeSegError
from pipeline.modelcard import DEFAULT_SEMANTIC_MODEL, find_card
from pipeline.sinks.jsonl import SCHEMA_KEYS

REPO = Path(__file__).resolve().parents[1]
FRAMES = 10


@pytest.fixture(scope="module")
def synth():
    try:
        from pipeline.synth import SynthWorld  # noqa: F401
    except ImportError as e:
        pytest.skip(f"the synthetic world (pipeline.synth.SynthWorld) is not importable yet: {e}")


def shipped_model():
    try:
        return find_card(DEFAULT_SEMANTIC_MODEL)
    except EdgeSegError as e:
        pytest.skip(f"the shipped model is missing: {e}")


def run_demo(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "demo", "--frames", str(FRAMES), "--out", str(out),
                           *extra], cwd=REPO, capture_output=True, text=True, timeout=300)


def check_outputs(out: Path, num_classes: int, model: str) -> None:
    with av.open(str(out / "demo.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [f for f in container.decode(stream)]
    assert len(frames) == FRAMES
    assert {(f.width, f.height) for f in frames} == {(640, 360)}

    lines = (out / "demo.jsonl").read_text().splitlines()
    assert len(lines) == FRAMES
    records = [json.loads(line) for line in lines]
    for i, rec in enumerate(records):
        assert tuple(rec) == SCHEMA_KEYS
        assert rec["frame"] == i and rec["model"] == model and (rec["width"], rec["height"]) == (640, 360)
        assert sum(rec["coverage"].values()) == pytest.approx(1.0, abs=1e-4)

    masks = sorted((out / "masks").glob("*_labelIds.png"))
    assert len(masks) == FRAMES
    for path in masks:
        with av.open(str(path)) as container:
            indices, _ = next(container.decode(video=0)).to_ndarray()  # pal8: the label indices
        assert indices.shape == (360, 640) and indices.max() < num_classes
    assert masks[0].name.endswith("_000000_labelIds.png")


def test_demo_with_the_shipped_model(tmp_path, synth):
    card = shipped_model()
    done = run_demo(tmp_path / "demo")
    assert done.returncode == 0, done.stderr
    assert f"{FRAMES} frames" in done.stdout and "fps" in done.stdout
    check_outputs(tmp_path / "demo", len(card.card.classes), card.card.name)
    # the instance model, the tracker, the analytics and the panoptic fusion run too
    records = [json.loads(line) for line in (tmp_path / "demo" / "demo.jsonl").read_text().splitlines()]
    assert any(rec["instances"] for rec in records)
    assert all("track_id" in inst for rec in records for inst in rec["instances"])
    assert all(rec["panoptic"] and rec["analytics"]["road"]["drivable_fraction"] > 0.2 for rec in records)
    assert [z for z in records[-1]["analytics"]["zones"]] == ["near_road"]
    assert len(list((tmp_path / "demo" / "masks").glob("demo_*_panoptic.png"))) == FRAMES


def test_demo_with_a_model_given_by_card_path(tmp_path, synth, tiny_card):
    done = run_demo(tmp_path / "demo", "--model", str(tiny_card.path))
    assert done.returncode == 0, done.stderr
    check_outputs(tmp_path / "demo", len(tiny_card.card.classes), tiny_card.card.name)


def test_demo_user_errors_are_one_line(tmp_path, synth):
    done = run_demo(tmp_path / "demo", "--model", "no_such_model")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "model 'no_such_model' not found" in done.stderr
