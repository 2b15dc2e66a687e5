"""`edgeseg import yolact` on official-format checkpoints made from our modules, and on wrong files.

Official checkpoints cannot be downloaded here, so the files are random weights of our Yolact saved under
the official key names (test_yolact_net.py checks those names against the official code), plus the legacy
keys the official loaders drop. The numeric comparison with the official implementation itself is
recorded in the README (it needs the official repository, which is not part of this one).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from pipeline.cli import main  # noqa: E402
from pipeline.importers import yolact as importer  # noqa: E402
from pipeline.modelcard import YOLACT_OUTPUTS, ModelCard, load_card  # noqa: E402
from pipeline.nets.yolact import CONFIGS, Yolact  # noqa: E402
from test_yolact_net import official_layout  # noqa: E402  (tests/ is on sys.path under pytest)

EDGESEG = Path(sys.executable).parent / "edgeseg"


def random_official_state(name: str, seed: int = 0, legacy: bool = True) -> dict[str, torch.Tensor]:
    """A random Yolact for config ``name`` with non-trivial batch-norm statistics, as the official repo
    would save it, plus a pre-1.0 ``backbone.layer1`` key and a v1.0 third downsample layer (both
    dropped by the official loader)."""
    cfg = CONFIGS[name]
    torch.manual_seed(seed)
    model = Yolact(cfg)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    state = official_layout(model.state_dict(), cfg.checkpoint_layout)
    if legacy:
        fpn = "fpn_phase_2" if cfg.checkpoint_layout == "yolact_edge" else "fpn"
        state["backbone.layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
        state[f"{fpn}.downsample_layers.{cfg.num_downsample}.weight"] = torch.zeros(256, 256, 3, 3)
        state[f"{fpn}.downsample_layers.{cfg.num_downsample}.bias"] = torch.zeros(256)
    return state


@pytest.fixture(scope="module")
def mobilenet_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("yolact") / "yolact_edge_mobilenetv2_54_800000.pth"
    torch.save(random_official_state("yolact_edge_mobilenetv2"), path)
    return path


def _args(checkpoint: Path, config: str | None = None):
    return type("Args", (), {"checkpoint": str(checkpoint), "config": config})()


@pytest.mark.parametrize("file_name, config", [
    ("yolact_base_54_800000.pth", "yolact_base"),
    ("yolact_resnet50_54_800000.pth", "yolact_resnet50"),
    ("yolact_edge_mobilenetv2_54_800000.pth", "yolact_edge_mobilenetv2"),
    ("yolact_im700_54_800000.pth", "yolact_im700"),
    ("yolact_darknet53_1_100_interrupt.pth", "yolact_darknet53"),
    ("yolact_resnet50_pascal_20_12000.pth", "yolact_resnet50_pascal"),
])
def test_config_is_read_from_the_file_name_like_the_official_tools(file_name, config):
    assert importer.choose_config(None, Path(file_name)).name == config
    assert importer.config_from_file_name(Path(file_name)) == config


def test_official_loader_cleanups_then_strict_load(tmp_path):
    """YolactEdge's fpn_phase_1/2 come back to fpn.*, the legacy keys are dropped, and every weight lands
    where the same-named official module had it."""
    state = random_official_state("yolact_edge_mobilenetv2", seed=3)
    path = tmp_path / "yolact_edge_mobilenetv2_54_800000.pth"
    torch.save(state, path)
    loaded = importer.load(_args(path))
    assert loaded.cfg.name == "yolact_edge_mobilenetv2"
    ours = loaded.model.state_dict()
    torch.testing.assert_close(ours["fpn.lat_layers.0.weight"], state["fpn_phase_1.lat_layers.0.weight"])
    torch.testing.assert_close(ours["fpn.downsample_layers.1.bias"], state["fpn_phase_2.downsample_layers.1.bias"])
    torch.testing.assert_close(ours["backbone.layers.3.0.conv.0.0.weight"], state["backbone.layers.3.0.conv.0.0.weight"])
    assert not loaded.model.training


def test_resnet50_checkpoint_with_legacy_keys_loads_by_file_name(tmp_path):
    state = random_official_state("yolact_resnet50", seed=4)
    path = tmp_path / "yolact_resnet50_54_800000.pth"
    torch.save(state, path)
    model = importer.load(_args(path)).model
    torch.testing.assert_close(model.state_dict()["prediction_layers.0.conf_layer.weight"],
                               state["prediction_layers.0.conf_layer.weight"])


@pytest.mark.slow
def test_import_writes_onnx_with_the_contract_outputs_and_an_instance_card(mobilenet_checkpoint, tmp_path):
    """The real command line on a YolactEdge MobileNetV2 checkpoint (about 20 s: export at 550x550,
    then 12 timed ONNX Runtime calls)."""
    proc = subprocess.run([str(EDGESEG), "import", "yolact", str(mobilenet_checkpoint), "--out", str(tmp_path),
                           "--name", "edge"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    loaded = load_card(tmp_path / "edge.yaml")
    card = loaded.card
    assert card.task == "instance" and card.output.kind == "yolact" and card.output.names == YOLACT_OUTPUTS
    assert card.classes == list(importer.COCO_CLASSES) and len(card.palette) == 80
    assert (card.input.width, card.input.height, card.input.color_order) == (550, 550, "RGB")
    assert card.input.mean == (123.68, 116.78, 103.94) and card.input.std == (58.40, 57.12, 57.38)
    assert card.detection.nms == "fast" and card.detection.top_k == 100 and card.detection.per_class_top == 200
    assert card.source.repository == "https://github.com/haotian-liu/yolact_edge"
    state = torch.load(mobilenet_checkpoint)
    unused = ("backbone.layers.7.", "backbone.layers.8.", "semantic_seg_conv.", "backbone.layer1.", "fpn_phase_2.downsample_layers.2.")
    assert card.params == sum(v.numel() for k, v in state.items()  # learnable weights the graph computes with
                              if not k.startswith(unused) and "running_" not in k and "num_batches" not in k)
    assert card.gflops > 10 and card.latency[0].threads == 2

    graph = onnx.load(str(loaded.onnx_path), load_external_data=False)
    assert graph.opset_import[0].version >= 17
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.graph.initializer)
    shapes = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in graph.graph.output}
    assert shapes == {"loc": ["batch", 19248, 4], "conf": ["batch", 19248, 81], "mask": ["batch", 19248, 32],
                      "proto": ["batch", 138, 138, 32], "priors": [19248, 4]}

    reference = Yolact(CONFIGS["yolact_edge_mobilenetv2"])
    reference.load_state_dict(importer.official_cleanup(state, reference.cfg))
    reference.eval()
    x = np.random.default_rng(0).normal(0, 1, (3, 3, 550, 550)).astype(np.float32)  # batch 3: dynamic axis
    got = dict(zip(YOLACT_OUTPUTS, ort.InferenceSession(str(loaded.onnx_path)).run(list(YOLACT_OUTPUTS), {"input": x})))
    with torch.no_grad():
        want = [t.numpy() for t in reference(torch.from_numpy(x))] + [reference.priors.numpy()]
    for name, w in zip(YOLACT_OUTPUTS, want):
        assert got[name].shape == w.shape
        assert np.abs(got[name] - w).max() < 1e-4, name


# --- wrong files and flags: exit code 2, one line naming the file and the reason ---------------------


def _save(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


def _wrong_classes(tmp: Path) -> Path:
    state = random_official_state("yolact_edge_mobilenetv2", legacy=False)
    state["prediction_layers.0.conf_layer.weight"] = torch.zeros(63, 256, 3, 3)  # 20 classes + background, x3
    return _save(tmp / "yolact_edge_mobilenetv2_1_10.pth", state)


def _truncated(tmp: Path) -> Path:
    full = _save(tmp / "full.pth", random_official_state("yolact_edge_mobilenetv2", legacy=False))
    cut = tmp / "yolact_edge_mobilenetv2_54_800000.pth"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    return cut


BAD = {
    "truncated": (_truncated, [], "cannot be read as a PyTorch checkpoint"),
    "resnet50 file as yolact_base": (
        lambda tmp: _save(tmp / "r50.pth", random_official_state("yolact_resnet50", legacy=False)),
        ["--config", "yolact_base"], "does not match YOLACT config 'yolact_base' (ResNet-101): 255 missing keys "
                                     "(backbone.layers.2.6.conv1.weight, "),
    "mobilenet file as resnet50 by name": (
        lambda tmp: _save(tmp / "yolact_resnet50_54_800000.pth", random_official_state("yolact_edge_mobilenetv2")),
        [], "does not match YOLACT config 'yolact_resnet50' (ResNet-50): "),
    "class count vs config": (_wrong_classes, [],
                              "key 'prediction_layers.0.conf_layer.weight': expected shape (243, 256, 3, 3) for "
                              "YOLACT config yolact_edge_mobilenetv2, checkpoint has (63, 256, 3, 3)"),
    "name without config": (lambda tmp: _save(tmp / "weights.pth", {"a": torch.zeros(1)}), [],
                            "cannot tell the YOLACT config from the file name"),
    "unknown config in name": (lambda tmp: _save(tmp / "yolact_custom_3_1000.pth", {"a": torch.zeros(1)}), [],
                               "config 'yolact_custom' from the file name: not a known YOLACT config"),
    "yolact++": (lambda tmp: _save(tmp / "yolact_plus_base_54_800000.pth", {"a": torch.zeros(1)}), [],
                 "not supported: YOLACT++ needs deformable convolutions"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_checkpoint_is_one_line_error_naming_the_file(case, tmp_path, capsys):
    make, extra, message = BAD[case]
    path = make(tmp_path)
    capsys.readouterr()
    assert main(["import", "yolact", str(path), "--out", str(tmp_path / "out"), *extra]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert str(path) in lines[0] and message in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


def test_official_espnet_checkpoint_is_not_a_yolact_checkpoint(shared_dir, capsys):
    path = shared_dir / "data" / "weights" / "espnet_cityscapes_camvid" / "espnet_p_2_q_8.pth"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    assert main(["import", "yolact", str(path), "--config", "yolact_base"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and "not a YOLACT checkpoint: none of its" in err


@pytest.mark.parametrize("flags, message", [
    (["--config", "yolact_nope"], "--config 'yolact_nope': not a known YOLACT config (yolact_base, "),
    (["--config", "yolact_edge_vid"], "--config 'yolact_edge_vid': not supported: YolactEdge video models"),
    (["--size", "400x400"], "--size: a YOLACT config fixes its input size"),
    (["--dataset", "camvid"], "--dataset: applies to semantic architectures"),
])
def test_bad_flags_for_yolact(flags, message, mobilenet_checkpoint, capsys):
    assert main(["import", "yolact", str(mobilenet_checkpoint), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err


def test_config_flag_is_refused_for_semantic_architectures(tmp_path, capsys):
    assert main(["import", "espnet", str(tmp_path / "x.pth"), "--config", "yolact_base"]) == 2
    assert "--config: applies to yolact only, not espnet" in capsys.readouterr().err


# --- the instance card: what the importer writes, and what the card refuses ----------------------------


def _instance_card(**changes) -> dict:
    card = dict(name="m", task="instance", file="m.onnx", architecture="YOLACT", classes=["car", "person"],
                palette=[(1, 2, 3), (4, 5, 6)], input=importer.input_spec(CONFIGS["yolact_resnet50"]).model_dump(),
                output={"kind": "yolact"}, params=1, gflops=1.0, licence="MIT",
                metrics={"synth:val": dict(dataset="synth:9000-9004", resolution="550x550", mask_ap=0.31,
                                           mask_ap50=0.52, images=100, command="edgeseg eval ...")})
    return card | changes


def test_instance_card_defaults_and_validation():
    card = ModelCard.model_validate(_instance_card())
    assert card.output.name == "conf" and card.output.names == YOLACT_OUTPUTS
    assert card.detection.score_threshold == 0.3 and card.detection.mask_threshold == 0.5
    assert card.metrics["synth:val"].mask_ap50 == 0.52
    with pytest.raises(ValueError, match="does not go with output kind"):
        ModelCard.model_validate(_instance_card(task="semantic"))
    with pytest.raises(ValueError, match="name must be 'conf'"):
        ModelCard.model_validate(_instance_card(output={"kind": "yolact", "name": "loc"}))
    with pytest.raises(ValueError, match="needs SemanticMetrics"):
        ModelCard.model_validate(_instance_card(task="semantic", output={"name": "logits", "kind": "logits"}))
    with pytest.raises(ValueError, match="postprocess"):
        ModelCard.model_validate(_instance_card(task="semantic", output={"name": "logits", "kind": "logits"},
                                                metrics={}, postprocess={}))
    with pytest.raises(ValueError, match="score_threshold"):
        ModelCard.model_validate(_instance_card(postprocess={"score_threshold": 1.5}))


def test_every_official_config_has_its_class_names():
    for name, cfg in CONFIGS.items():
        if name.startswith("yolact"):
            assert len(importer.CLASS_NAMES.get(name, importer.COCO_CLASSES)) == cfg.num_classes, name
