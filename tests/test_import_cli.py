"""`edgeseg import` on random-weight checkpoints written in the official key format, and on broken files.

The random checkpoints come from our own modules, whose key names are checked against the real
official files in test_import_official.py; ESPNet's are saved without batch-norm step counters, as
the official ESPNet files (PyTorch 0.3) are.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from pipeline.cli import main  # noqa: E402
from pipeline.labels import CAMVID, CITYSCAPES  # noqa: E402
from pipeline.modelcard import load_card  # noqa: E402
from pipeline.nets.espnet import ESPNet  # noqa: E402
from pipeline.nets.espnetv2 import ESPNetv2Segmentation  # noqa: E402

EDGESEG = Path(sys.executable).parent / "edgeseg"


def _randomise_bn(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-trivial batch-norm statistics and PReLU slopes, so that a wrong load or fold shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            elif isinstance(m, torch.nn.PReLU):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5)
    return model.eval()


def _espnet_state(classes: int = 12) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    model = _randomise_bn(ESPNet(classes, p=1, q=1, skip_includes_image=True), seed=1)
    return {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def _espnetv2_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(2)
    return _randomise_bn(ESPNetv2Segmentation(0.5, 20), seed=2).state_dict()


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(EDGESEG), "import", *args], capture_output=True, text=True, timeout=300)


def _onnx_vs_torch(onnx_path: Path, model: torch.nn.Module, height: int, width: int) -> float:
    x = np.random.default_rng(5).uniform(-2, 2, (1, 3, height, width)).astype(np.float32)
    got = ort.InferenceSession(str(onnx_path)).run(None, {"input": x})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape
    return float(np.abs(got - want).max() / max(1.0, np.abs(want).max()))


def test_import_espnet_wrapped_checkpoint_writes_onnx_and_card(tmp_path):
    """DataParallel prefix and {'state_dict': ...} wrapper are accepted; 12 channels -> CamVid."""
    state = _espnet_state()
    ckpt = tmp_path / "espnet_random_camvid.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, ckpt)
    out = tmp_path / "out"

    proc = _run_cli("espnet", str(ckpt), "--out", str(out), "--size", "64x48")
    assert proc.returncode == 0, proc.stderr

    loaded = load_card(out / "espnet_random_camvid.yaml")
    card = loaded.card
    assert card.classes == [*CAMVID.classes, "void"]
    assert card.palette[:11] == list(CAMVID.palette) and card.palette[11] == (0, 0, 0)
    assert card.label_set == "camvid11"
    assert (card.input.width, card.input.height, card.input.color_order) == (64, 48, "BGR")
    assert card.output.kind == "logits"
    assert card.source.sha256 == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert card.source.checkpoint == ckpt.name and card.licence == "MIT"
    assert card.params == sum(v.numel() for k, v in state.items() if "running" not in k)
    assert card.gflops > 0 and len(card.latency) == 1 and card.latency[0].threads == 2

    model = ESPNet(12, p=1, q=1, skip_includes_image=True)
    model.load_state_dict(state, strict=False)  # step counters absent, as in the file
    assert _onnx_vs_torch(loaded.onnx_path, model.eval(), 48, 64) < 1e-4


def test_import_espnetv2_infers_cityscapes_and_scale(tmp_path):
    state = _espnetv2_state()
    ckpt = tmp_path / "espnetv2_s_0.5_city_64x32.pth"
    torch.save(state, ckpt)

    proc = _run_cli("espnetv2", str(ckpt), "--out", str(tmp_path), "--name", "v2")
    assert proc.returncode == 0, proc.stderr

    loaded = load_card(tmp_path / "v2.yaml")
    card = loaded.card
    assert card.classes == [*CITYSCAPES.classes, "background"]
    assert card.architecture == "ESPNetv2 (s=0.5)"
    assert (card.input.width, card.input.height, card.input.color_order) == (64, 32, "RGB")  # size from the name
    np.testing.assert_allclose(card.input.mean, (123.675, 116.28, 103.53))
    model = ESPNetv2Segmentation(0.5, 20)
    model.load_state_dict(state)
    assert _onnx_vs_torch(loaded.onnx_path, model.eval(), 32, 64) < 1e-4


# --- broken inputs: exit code 2, one stderr line naming the file and what is wrong -------------------


def _write(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


def _truncated(tmp: Path) -> Path:
    full = _write(tmp / "full.pth", _espnet_state())
    cut = tmp / "truncated.pth"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    return cut


def _garbage(tmp: Path) -> Path:
    p = tmp / "garbage.pth"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return p


def _wrong_shape(tmp: Path) -> Path:
    state = _espnet_state()
    state["encoder.level1.conv.weight"] = torch.zeros(16, 3, 5, 5)
    return _write(tmp / "wrong_shape.pth", state)


BAD_FILES = {
    "missing": (lambda tmp: tmp / "nope.pth", "espnet", "checkpoint not found"),
    "directory": (lambda tmp: tmp, "espnet", "not a file"),
    "truncated": (_truncated, "espnet", "cannot be read as a PyTorch checkpoint"),
    "garbage": (_garbage, "espnetv2", "cannot be read as a PyTorch checkpoint"),
    "tensor": (lambda tmp: _write(tmp / "tensor.pth", torch.zeros(3)), "espnet", "not a state_dict"),
    "list": (lambda tmp: _write(tmp / "list.pth", [torch.zeros(3)]), "espnetv2", "holds a list"),
    "pickled object": (lambda tmp: _write(tmp / "args.pth", {"state_dict": _espnet_state(),
                                                            "args": argparse.Namespace(lr=0.1)}),
                       "espnet", "holds Python objects besides tensors (argparse.Namespace)"),
    "non-tensor entry": (lambda tmp: _write(tmp / "meta.pth", {"a": torch.zeros(1), "epoch": 3}), "espnet",
                         "entry 'epoch' is a int"),
    "espnetv2 file as espnet": (lambda tmp: _write(tmp / "v2.pth", _espnetv2_state()), "espnet",
                                "missing keys (encoder.level1.conv.weight, "),
    "espnet file as espnetv2": (lambda tmp: _write(tmp / "v1.pth", _espnet_state()), "espnetv2",
                                "not an ESPNetv2 state_dict: "),
    "wrong shape": (_wrong_shape, "espnet",
                    "key 'encoder.level1.conv.weight': expected shape (16, 3, 3, 3) for ESPNet, checkpoint has "
                    "(16, 3, 5, 5)"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_checkpoint_is_one_line_error_naming_the_file(case, tmp_path, capsys):
    make, arch, message = BAD_FILES[case]
    path = make(tmp_path)
    capsys.readouterr()
    assert main(["import", arch, str(path), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert str(path) in lines[0] and message in lines[0]
    assert not (tmp_path / "out").exists()


def test_dataset_that_does_not_fit_the_output_channels_is_refused(tmp_path, capsys):
    path = _write(tmp_path / "city.pth", _espnet_state(classes=20))
    assert main(["import", "espnet", str(path), "--dataset", "camvid"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(path) in err and "20 output channels" in err and "camvid models have 12" in err


def test_size_not_divisible_by_16_is_refused_for_espnetv2(tmp_path, capsys):
    path = _write(tmp_path / "v2.pth", _espnetv2_state())
    assert main(["import", "espnetv2", str(path), "--size", "480x360"]) == 2
    err = capsys.readouterr().err.strip()
    assert "480x360" in err and "divisible by 16" in err and "480x368" in err


def test_bad_file_from_the_real_command_line_prints_one_line(tmp_path):
    """The same through the installed `edgeseg` script: no traceback, no exporter chatter."""
    path = _truncated(tmp_path)
    proc = _run_cli("espnet", str(path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and str(path) in proc.stderr and proc.stdout == ""


def test_output_directory_that_is_a_file_is_refused(tmp_path, capsys):
    ckpt = _write(tmp_path / "v1.pth", _espnet_state())
    blocker = tmp_path / "taken"
    blocker.write_text("")
    assert main(["import", "espnet", str(ckpt), "--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(blocker) in err[0] and "cannot create output directory" in err[0]


def test_name_with_a_directory_is_refused(tmp_path, capsys):
    ckpt = _write(tmp_path / "v1.pth", _espnet_state())
    assert main(["import", "espnet", str(ckpt), "--out", str(tmp_path), "--name", "../escape"]) == 2
    assert "--name '../escape': must be a plain file name" in capsys.readouterr().err
