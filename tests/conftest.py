"""Shared fixtures: the data folder beside the repo, and tiny real ONNX models with their cards.

The tiny models are real torch conv nets exported with torch.onnx.export, so the tests exercise
the real ONNX Runtime path end to end before (and independently of) the shipped models.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from pipeline.labels import CAMVID
from pipeline.modelcard import LoadedCard, ModelCard, load_card, save_card

TINY_SIZE = (96, 72)  # model input WxH: smaller than CamVid's 480x360 and than synth frames, so decoders resize
TINY_CLASSES = (*CAMVID.classes, "void")  # like the official ESPNet CamVid net: 11 classes + a void channel
TINY_MEAN = (123.675, 116.28, 103.53)  # ImageNet mean/std in 0..255 units, RGB
TINY_STD = (58.395, 57.12, 57.375)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = Path(__file__).resolve().parents[2] / "shared"
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent")
    return path


def _tiny_net(kind: str):
    torch = pytest.importorskip("torch", reason="torch (the `train` extra) builds the tiny test models")
    from torch import nn

    class TinySeg(nn.Module):
        """Two strided convs, a 1x1 classifier, bilinear upsampling back to the input: the shape of a
        real segmentation net at a size that exports and runs in well under a second."""

        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(16, len(TINY_CLASSES), 1))

        def forward(self, x):
            logits = nn.functional.interpolate(self.body(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
            return logits if kind == "logits" else logits.argmax(1)

    torch.manual_seed(0)
    net = TinySeg().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so fusion in ORT has something to fold
        net.body[1].running_mean.uniform_(-0.5, 0.5)
        net.body[1].running_var.uniform_(0.5, 2.0)
    return torch, net


def export_tiny_model(directory: Path, kind: str = "logits", batch: int | None = None) -> LoadedCard:
    """Export the tiny net to ``directory/tiny_<kind>.onnx`` with a card beside it. ``batch`` fixes the
    batch dimension (None: dynamic)."""
    torch, net = _tiny_net(kind)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"tiny_{kind}" + (f"_b{batch}" if batch else "")
    onnx_path = directory / f"{name}.onnx"
    width, height = TINY_SIZE
    example = torch.randn(batch or 2, 3, height, width)
    output = "logits" if kind == "logits" else "labels"
    # The TorchScript exporter: about 1 s here against 6 s for the dynamo exporter, for the same graph.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (example,), str(onnx_path), input_names=["input"], output_names=[output],
                          dynamic_axes=None if batch else {"input": {0: "batch"}, output: {0: "batch"}},
                          opset_version=17, dynamo=False)
    card = ModelCard(
        name=name, task="semantic", file=onnx_path.name, architecture="tiny test net", label_set=CAMVID.name,
        classes=list(TINY_CLASSES), palette=[*CAMVID.palette, (0, 0, 0)],
        input=dict(name="input", width=width, height=height, color_order="RGB", mean=TINY_MEAN, std=TINY_STD),
        output=dict(name=output, kind=kind), params=sum(p.numel() for p in net.parameters()), gflops=0.001,
        licence="Apache-2.0", description="random weights; for tests only")
    return load_card(save_card(card, directory / f"{name}.yaml"))


@pytest.fixture(scope="session")
def tiny_card(tmp_path_factory) -> LoadedCard:
    """A logits model (12 channels: CamVid's 11 classes + void), dynamic batch."""
    return export_tiny_model(tmp_path_factory.mktemp("tiny_logits"))


@pytest.fixture(scope="session")
def tiny_labels_card(tmp_path_factory) -> LoadedCard:
    """The same net with the argmax inside the graph: output kind "labels"."""
    return export_tiny_model(tmp_path_factory.mktemp("tiny_labels"), kind="labels")


@pytest.fixture(scope="session")
def tiny_torch_net():
    """The torch module behind :func:`tiny_card` (same seed, same weights), as an independent reference."""
    return _tiny_net("logits")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def road_yolact_card(tmp_path_factory) -> LoadedCard:
    """Our road YOLACT architecture with random weights, exported to ONNX by the real exporter: scores near
    uniform, so tests that need detections lower the score thresholds."""
    torch = pytest.importorskip("torch", reason="torch (the `train` extra) exports the test YOLACT")
    from pipeline.importers.yolact import input_spec
    from pipeline.nets.yolact import Yolact, config_by_name
    from pipeline.nets.yolact_export import export_yolact_onnx

    directory = tmp_path_factory.mktemp("road_yolact")
    cfg = config_by_name("edgeseg_yolact_road")
    torch.manual_seed(0)
    spec = input_spec(cfg)
    export_yolact_onnx(Yolact(cfg), directory / "road.onnx", spec)
    classes = ["Car", "Pedestrian", "Bicyclist"]
    card = ModelCard(name="road_test", task="instance", file="road.onnx", architecture="YOLACT (random weights)",
                     classes=classes, palette=[CAMVID.palette[CAMVID.index(c)] for c in classes],
                     input=spec.model_dump(), output={"kind": "yolact"}, params=1, gflops=1.0, licence="Apache-2.0")
    return load_card(save_card(card, directory / "road.yaml"))


def stop_and_resume(train, config: Path, tmp_path: Path, until: int) -> tuple[Path, Path]:
    """Run a training tool's ``config`` straight through (runs in tmp_path/a) and again stopped after epoch
    ``until`` with batches from 2 worker processes, then resumed (tmp_path/b). ``train(config, runs, *flags)``
    runs the tool; every run must succeed. Returns the two runs folders."""
    straight = train(config, tmp_path / "a")
    assert straight.returncode == 0, straight.stderr
    first = train(config, tmp_path / "b", "--until", str(until), "--workers", "2")
    assert first.returncode == 0, first.stderr
    second = train(config, tmp_path / "b", "--resume")
    assert second.returncode == 0, second.stderr
    assert f"resumed from epoch {until - 1}" in second.stdout
    return tmp_path / "a", tmp_path / "b"
