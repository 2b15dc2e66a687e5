"""tools/train_semantic.py: a run stopped with --until and resumed ends with the same weights as one run
straight through, also when worker processes prepare the batches (every draw derives from the seed, the
epoch and the batch number); the synthetic frames join at their start epoch; `init` starts from another
run's weights; user mistakes are one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from conftest import stop_and_resume

torch = pytest.importorskip("torch", reason="the training tool needs torch (the `train` extra)")
from pipeline.train.config import read_with_base  # noqa: E402  (imports torch)

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "train_semantic.py"
TINY_NET = {"num_classes": 11, "stem": [8, 8, 16], "blocks8": 1, "width16": 16, "dilations16": [1, 2], "decoder": 8,
            "decoder4": 8}


def write_config(tmp_path: Path, camvid: Path, **changes) -> Path:
    """The shipped recipe with a tiny net, small crops, 3 epochs validated every epoch, synthetic frames
    from epoch 1."""
    cfg = read_with_base(REPO / "tools" / "train_configs" / "edgeseg_road_s.yaml")
    cfg.pop("init", None)
    cfg.update(name="tiny", camvid=str(camvid), net=TINY_NET, epochs=3, batch_size=3, crop=[160, 128],
               warmup_epochs=1, val_every=1)
    cfg.update(changes)
    cfg["synth"].update(start_epoch=1, seeds=[1000, 1001])
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def train(config: Path, runs: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), str(config), "--runs", str(runs), "--threads", "1",
                           "--limit", "4", "--device", "cpu", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def log(runs: Path) -> list[dict]:
    lines = (runs / "tiny" / "log.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "data_s_per_iter")} for line in lines]


@pytest.mark.slow
def test_a_stopped_and_resumed_run_with_workers_ends_where_a_straight_run_does(tmp_path, shared_dir):
    config = write_config(tmp_path, shared_dir / "data" / "camvid")
    straight, resumed = stop_and_resume(train, config, tmp_path, until=2)

    records = log(straight)
    assert log(resumed) == records
    assert [r["epoch"] for r in records] == [0, 1, 2] and [r["synth"] for r in records] == [False, True, True]
    assert all(0.0 <= r["val_miou"] <= 1.0 and len(r["val_iou"]) == 11 for r in records)
    a, b = (torch.load(runs / "tiny" / "last.pt", weights_only=False) for runs in (straight, resumed))
    assert a["step"] == b["step"] == 1 + 3 + 3  # 4 CamVid frames in batches of 3 (3 + 1 merge), then 4 + 4 frames
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    best = torch.load(straight / "tiny" / "best.pt", weights_only=False)
    assert best["val_miou"] == max(r["val_miou"] for r in records) and best["net"]["stem"] == (8, 8, 16)
    assert cv2.imread(str(resumed / "tiny" / "curves.png")).shape == (240, 3 * 360, 3)  # loss, val mIoU, lr
    commands = (resumed / "tiny" / "command.txt").read_text().splitlines()
    assert len(commands) == 2 and commands[0].endswith("--until 2 --workers 2") and commands[1].endswith("--resume")


def test_a_batch_depends_on_seed_epoch_and_batch_number_only(monkeypatch):
    """What lets workers prepare batches in any order: drawing other batches first changes nothing."""
    monkeypatch.syspath_prepend(str(REPO / "tools"))
    import train_semantic as t

    cfg = {"seed": 7, "crop": [64, 48], "scale": [0.75, 1.5],
           "synth": {"start_epoch": 1, "frames_per_epoch": 4, "seeds": [1000, 1001], "max_index": 300}}
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 60, 80, 3), dtype=np.uint8)
    labels = rng.integers(0, 11, (4, 60, 80), dtype=np.uint8)
    data = t.TrainData(cfg, images, labels, (160, 90), limit=None)

    assert [len(c) for c in data.chunks(0, 3)] == [4]  # CamVid only; a lone last frame joins the batch before
    chunks = data.chunks(1, 3)
    assert [len(c) for c in chunks] == [3, 3, 2] and sorted(sum(chunks, [])) == list(range(8))
    assert chunks == data.chunks(1, 3) and chunks != data.chunks(2, 3)
    first = data.batch(1, 0, chunks[0])
    data.batch(1, 1, chunks[1])
    again = data.batch(1, 0, chunks[0])
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(data.batch(2, 0, chunks[0])[0], first[0])
    synth_image, synth_label = data.batch(1, 0, [5])
    assert synth_image.shape == (1, 48, 64, 3) and set(np.unique(synth_label)) - {255} <= set(range(11))
    assert len(np.unique(synth_label)) > 2  # a rendered road scene, not a blank frame


@pytest.mark.parametrize("args, message", [
    (["--device", "cuda"], "train_semantic: --device cuda, but torch finds no CUDA GPU on this machine"),
    ([], "train_semantic: no images in {camvid}/train"),
])
def test_mistakes_are_one_line(tmp_path, args, message):
    if args and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    camvid = tmp_path / "no_camvid"
    result = subprocess.run([sys.executable, str(TOOL), str(write_config(tmp_path, camvid)), "--runs",
                             str(tmp_path / "runs"), *args], cwd=REPO, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 1 and result.stderr.strip() == message.format(camvid=camvid)


@pytest.mark.slow
def test_init_starts_from_another_runs_weights_and_refuses_another_net(tmp_path, shared_dir):
    camvid = shared_dir / "data" / "camvid"
    first = train(write_config(tmp_path, camvid), tmp_path / "a", "--until", "1")
    assert first.returncode == 0, first.stderr
    checkpoint = tmp_path / "a" / "tiny" / "last.pt"
    (tmp_path / "next").mkdir()
    again = train(write_config(tmp_path / "next", camvid, init=str(checkpoint)), tmp_path / "b", "--until", "1")
    assert again.returncode == 0, again.stderr
    assert f"initialised from {checkpoint} (epoch 0)" in again.stdout
    assert log(tmp_path / "b")[0]["loss"] < log(tmp_path / "a")[0]["loss"]  # it goes on from the trained weights

    wider = write_config(tmp_path / "next", camvid, init=str(checkpoint), net=TINY_NET | {"width16": 24})
    refused = train(wider, tmp_path / "c")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(f"train_semantic: {checkpoint}: a checkpoint of another net")
    missing = train(write_config(tmp_path / "next", camvid, init=str(tmp_path / "none.pt")), tmp_path / "c")
    assert missing.returncode == 1
    assert missing.stderr == f"train_semantic: {tmp_path / 'none.pt'}: checkpoint not found\n"


def test_a_truncated_last_checkpoint_is_one_line_on_resume(tmp_path, shared_dir):
    config = write_config(tmp_path, shared_dir / "data" / "camvid")
    (tmp_path / "runs" / "tiny").mkdir(parents=True)
    last = tmp_path / "runs" / "tiny" / "last.pt"
    last.write_bytes(b"PK\x03\x04 cut short")
    result = train(config, tmp_path / "runs", "--resume")
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"train_semantic: {last}: cannot be read as a torch checkpoint")
