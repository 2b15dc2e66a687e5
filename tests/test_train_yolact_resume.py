"""tools/train_yolact.py end to end on a few frames: a run stopped with --until (batches prepared by
worker processes) and resumed ends with the same weights, log and validation as one run straight through."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from conftest import stop_and_resume

torch = pytest.importorskip("torch", reason="the training tool needs torch (the `train` extra)")
REPO = Path(__file__).resolve().parents[1]


def train(config: Path, runs: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / "train_yolact.py"), str(config), "--runs", str(runs),
                           "--threads", "1", "--limit", "3", "--device", "cpu", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def log(runs: Path) -> list[dict]:
    lines = (runs / "tiny" / "log.jsonl").read_text().splitlines()
    timings = ("seconds", "s_per_iter", "data_s_per_iter", "val_seconds")
    return [{k: v for k, v in json.loads(line).items() if k not in timings} for line in lines]


@pytest.mark.slow
def test_a_stopped_and_resumed_run_with_workers_ends_where_a_straight_run_does(tmp_path, shared_dir):
    config = tmp_path / "tiny.yaml"  # stage 1 (384x384) on 3 CamVid + 3 synthetic frames, validated every epoch
    config.write_text(f"base: {REPO / 'tools' / 'train_configs' / 'edgeseg_yolact_road_stage1.yaml'}\n"
                      "name: tiny\nepochs: 3\nbatch_size: 3\nwarmup_epochs: 1\n"
                      "synth: {seeds: [2000, 2001], max_index: 300, size: [640, 360], frames_per_epoch: 3}\n"
                      "val: {every: 1, synth_seeds: [9000, 9000]}\n")
    straight, resumed = stop_and_resume(train, config, tmp_path, until=1)

    records = log(straight)
    assert log(resumed) == records
    assert [r["epoch"] for r in records] == [0, 1, 2] and all(r["iters"] == 2 and not r["skipped"] for r in records)
    assert all(set(r["val"]) == {"synth", "camvid"} for r in records)
    assert records[-1]["loss"]["total"] < records[0]["loss"]["total"]  # it learns something even on six frames
    a, b = (torch.load(runs / "tiny" / "last.pt", weights_only=False) for runs in (straight, resumed))
    assert a["step"] == b["step"] == 6
    assert cv2.imread(str(resumed / "tiny" / "curves.png")).shape == (3 * 240, 3 * 360, 3)  # 7 charts
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


@pytest.mark.slow
def test_a_separable_run_from_a_dense_checkpoint_is_fitted_and_distilled_from_the_shipped_net(tmp_path, shared_dir):
    from dataclasses import asdict

    from pipeline.nets.yolact import Yolact, config_by_name

    dense = config_by_name("edgeseg_yolact_road")
    init = tmp_path / "dense.pt"
    torch.save({"model": Yolact(dense).state_dict(), "net": asdict(dense), "epoch": 0}, init)
    config = tmp_path / "tiny.yaml"  # masks_to_train 1: the mask loss draws from torch's generator every batch
    config.write_text(f"base: {REPO / 'tools' / 'train_configs' / 'edgeseg_yolact_road_stage1.yaml'}\n"
                      f"name: tiny\nepochs: 2\nbatch_size: 3\nwarmup_epochs: 1\ninit: {init}\n"
                      "net_overrides: {separable: true, input_size: [128, 96], anchor_norm: [128.0, 96.0]}\n"
                      "factorise: {images: 3, steps: 4}\n"
                      "distill: {teacher: engines/edgeseg_yolact_road.yaml, proto: 2.0}\n"  # the shipped net
                      "loss: {masks_to_train: 1}\n"
                      "synth: {seeds: [2000, 2001], max_index: 300, size: [640, 360], frames_per_epoch: 3}\n"
                      "val: {every: 1, synth_seeds: [9000, 9000]}\n")
    done = train(config, tmp_path / "a")
    assert done.returncode == 0, done.stderr
    fitted = [line for line in done.stdout.splitlines() if line.startswith("fitted ") and " R2 " in line]
    assert len(fitted) == 11 and fitted[0].startswith("fitted fpn.pred_layers.")
    assert "11 dense layer(s) factorised" in done.stdout and "fitted 11 factorised layer(s) on 3 images" in done.stdout
    records = log(tmp_path / "a")
    assert [r["epoch"] for r in records] == [0, 1]
    loss = records[0]["loss"]
    assert loss["distill_conf"] > 0 and loss["distill_proto"] > 0
    assert loss["total"] == pytest.approx(sum(v for k, v in loss.items() if k != "total"), rel=1e-3)  # GT + teacher
    assert (tmp_path / "a" / "tiny" / "teacher.onnx").is_file()  # the dense teacher, in ONNX Runtime on a CPU
    assert cv2.imread(str(tmp_path / "a" / "tiny" / "curves.png")).shape == (4 * 240, 3 * 360, 3)  # 11 charts

    # stopped after epoch 1 and resumed, the distilled run ends where the straight one did
    for flags in (("--until", "1"), ("--resume",)):
        part = train(config, tmp_path / "b", *flags)
        assert part.returncode == 0, part.stderr
    assert log(tmp_path / "b") == records
    a, b = (torch.load(runs / "tiny" / "last.pt", weights_only=False) for runs in (tmp_path / "a", tmp_path / "b"))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


@pytest.mark.slow
def test_a_run_starts_from_the_shipped_model_read_back_from_its_onnx_file(tmp_path, shared_dir):
    config = tmp_path / "tiny.yaml"
    config.write_text(f"base: {REPO / 'tools' / 'train_configs' / 'edgeseg_yolact_road.yaml'}\n"
                      "name: tiny\nepochs: 1\nbatch_size: 3\nwarmup_epochs: 0\ninit: engines/edgeseg_yolact_road.yaml\n"
                      "net_overrides: {input_size: [128, 96], anchor_norm: [128.0, 96.0]}\n"
                      "synth: {seeds: [2000, 2001], max_index: 300, size: [640, 360], frames_per_epoch: 3}\n"
                      "val: {every: 1, synth_seeds: [9000, 9000]}\n")
    done = train(config, tmp_path / "a")
    assert done.returncode == 0, done.stderr
    assert ("initialised from engines/edgeseg_yolact_road.yaml (an exported model, its norms' statistics from 6 "
            "training images; 0 new anchor(s) copied from their nearest aspect ratio; 0 dense layer(s) "
            "factorised)") in done.stdout  # --limit 3: three frames of each source
    assert [r["epoch"] for r in log(tmp_path / "a")] == [0]
