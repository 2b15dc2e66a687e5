"""tools/export_semantic.py end to end: a randomly initialised RoadNet saved in the trainer's best.pt format is
exported, given class offsets fitted on CamVid train (a few images), measured and timed, as the shipped
net is; the exported file computes the torch net's logits plus exactly the offsets its card records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from pipeline.modelcard import SemanticMetrics, load_card

torch = pytest.importorskip("torch", reason="torch (the `train` extra) loads the checkpoint and exports")
REPO = Path(__file__).resolve().parents[1]
CONFIG = "tools/train_configs/edgeseg_road_s.yaml"


@pytest.fixture
def net_and_checkpoint(tmp_path):
    from pipeline.nets.roadnet import RoadNet, RoadNetConfig

    torch.manual_seed(0)
    net = RoadNet(RoadNetConfig()).eval()
    path = tmp_path / "best.pt"
    torch.save({"model": net.state_dict(), "net": RoadNetConfig().__dict__, "epoch": 4, "val_miou": 0.1}, path)
    return net, path


def export(checkpoint: Path, out: Path, shared_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / "export_semantic.py"), CONFIG, "--checkpoint",
                           str(checkpoint), "--out", str(out), "--camvid", str(shared_dir / "data" / "camvid"),
                           "--limit", "6", "--latency-runs", "3", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_export_fits_folds_and_records_class_offsets(shared_dir, net_and_checkpoint, tmp_path):
    net, checkpoint = net_and_checkpoint
    done = export(checkpoint, tmp_path, shared_dir)
    assert done.returncode == 0, done.stderr
    card = load_card(tmp_path / "edgeseg_road_s.yaml").card
    bias = np.array(card.training.class_bias, np.float32)
    assert bias.shape == (11,) and np.any(bias != 0)
    assert [d.role for d in card.training.data] == ["train", "train", "val", "calibration"]
    assert card.training.epochs == 5 and card.training.config == CONFIG
    assert set(card.metrics) == {"camvid_val", "synth_val"}
    assert all(isinstance(m, SemanticMetrics) and m.images == 6 for m in card.metrics.values())
    assert [lat.threads for lat in card.latency] == [1, 2]
    x = np.random.default_rng(0).normal(0, 1, (1, 3, 360, 480)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy() + bias[None, :, None, None]
    got = ort.InferenceSession(str(tmp_path / "edgeseg_road_s.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    np.testing.assert_allclose(got, expected, atol=2e-3)


@pytest.mark.slow
def test_export_without_class_offsets_keeps_the_net_as_trained(shared_dir, net_and_checkpoint, tmp_path):
    net, checkpoint = net_and_checkpoint
    done = export(checkpoint, tmp_path, shared_dir, "--no-class-bias")
    assert done.returncode == 0, done.stderr
    card = load_card(tmp_path / "edgeseg_road_s.yaml").card
    assert card.training.class_bias is None and "calibration" not in [d.role for d in card.training.data]
    assert "class offsets" not in done.stdout


def test_missing_checkpoint_or_data_is_one_line(net_and_checkpoint, tmp_path):
    """No checkpoint, or a CamVid folder without the split: one line naming the path, nothing written."""
    _, checkpoint = net_and_checkpoint
    for args, named in ((["--checkpoint", str(tmp_path / "none.pt")], "none.pt"),
                        (["--checkpoint", str(checkpoint), "--camvid", str(tmp_path / "nocamvid")], "nocamvid")):
        done = subprocess.run([sys.executable, str(REPO / "tools" / "export_semantic.py"), CONFIG, "--out",
                               str(tmp_path / "out"), "--latency-runs", "3", *args], cwd=REPO, capture_output=True,
                              text=True, timeout=300, check=False)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("export_semantic: ") and named in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_a_checkpoint_is_one_line(shared_dir, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    done = subprocess.run([sys.executable, str(REPO / "tools" / "export_semantic.py"), CONFIG, "--checkpoint",
                           str(garbage), "--out", str(tmp_path / "out"), "--camvid", str(shared_dir / "data" / "camvid")],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"export_semantic: {garbage}: cannot be read as a torch checkpoint")
    assert not (tmp_path / "out").exists()
