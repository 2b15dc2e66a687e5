"""pipeline.train.onnx_checkpoint on the shipped road YOLACT: the weights read back from the ONNX file
reproduce it, in eval mode and, on a batch with the statistics the norms took, in training mode too; files of
other nets or other models are one-line errors."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from pipeline.errors import EdgeSegError
from pipeline.modelcard import load_card, save_card
from pipeline.preprocess import Preprocessor
from pipeline.runtime import onnxruntime as ort_runtime
from pipeline.synth import SynthWorld

torch = pytest.importorskip("torch", reason="reading a model back for training needs torch (the `train` extra)")

from pipeline.nets.yolact import Yolact, config_by_name  # noqa: E402
from pipeline.nets.yolact_export import export_yolact_onnx  # noqa: E402
from pipeline.train.onnx_checkpoint import onnx_checkpoint  # noqa: E402

ENGINES = Path(__file__).resolve().parents[1] / "engines"
CARD = ENGINES / "edgeseg_yolact_road.yaml"
NET = config_by_name("edgeseg_yolact_road")
# the candidate the shipped file starts: factorised, at 896x496 (anchor_norm follows the input)
SEPARABLE = replace(NET, separable=True, input_size=(896, 496), anchor_norm=(896.0, 496.0))


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    world, pre = SynthWorld(seed=9000, size=(640, 360)), Preprocessor(load_card(CARD).card.input)
    return pre([world.render(k).frame.image for k in (0, 10, 20, 30)])


def test_the_shipped_file_reads_back_as_the_net_it_is_in_both_modes(frames):
    batches = (torch.from_numpy(frames[:2]), torch.from_numpy(frames[2:]))  # statistics pooled over both
    checkpoint = onnx_checkpoint(CARD.with_suffix(".onnx"), SEPARABLE, iter(batches))  # .onnx: its card
    assert checkpoint["norm_images"] == 4 and checkpoint["epoch"] is None
    assert checkpoint["input"] == load_card(CARD).card.input.model_dump()
    net_cfg = config_by_name("edgeseg_yolact_road")
    assert checkpoint["net"] == {**checkpoint["net"], "separable": False, "input_size": (640, 352),
                                 "anchor_norm": (640.0, 352.0), "aspect_ratios": net_cfg.aspect_ratios}
    net = Yolact(NET)
    net.load_state_dict(checkpoint["model"])
    x = torch.from_numpy(frames)
    with torch.no_grad():
        loc, conf, mask, proto = net.eval()(x)
        trained = net.train()(x)  # one batch of all four: each norm divides by the statistics it took
    shipped = ort_runtime.load(load_card(CARD), threads=1).run(frames)
    for name, ours in (("loc", loc), ("conf", conf), ("mask", mask), ("proto", proto)):
        assert np.abs(ours.numpy() - shipped[name]).max() < 1e-3, name
    assert float((trained.loc - loc).abs().max()) < 1e-4
    assert float((trained.conf_logits.softmax(-1) - conf).abs().max()) < 1e-4
    assert float((trained.mask - mask).abs().max()) < 1e-4 and float((trained.proto - proto).abs().max()) < 1e-4
    assert conf[..., 1:].max() > 0.9  # the shipped net finds the road users


def test_without_images_the_norms_divide_by_one_and_eval_mode_still_reproduces_the_file():
    checkpoint = onnx_checkpoint(CARD, NET)  # raises if ONNX Runtime and torch disagree
    norms = [k for k in checkpoint["model"] if k.endswith("running_var")]
    assert checkpoint["norm_images"] == 0 and len(norms) == 52
    used = [k for k in norms if not k.startswith(("backbone.layers.7", "backbone.layers.8"))]  # past P5's stage
    assert len(used) == 48 and all(torch.allclose(checkpoint["model"][k] + 1e-5, torch.ones(1)) for k in used)


def test_an_earlier_stage_with_fewer_aspect_ratios_reads_back_with_the_first_ones(tmp_path):
    three = replace(NET, aspect_ratios=NET.aspect_ratios[:3], input_size=(128, 96), anchor_norm=(128.0, 96.0))
    card = load_card(CARD).card
    spec = card.input.model_copy(update={"width": 128, "height": 96})
    export_yolact_onnx(Yolact(three), tmp_path / "three.onnx", spec)
    save_card(card.model_copy(update={"file": "three.onnx", "input": spec}), tmp_path / "three.yaml")
    checkpoint = onnx_checkpoint(tmp_path / "three.yaml", NET)  # the config's net has four
    assert checkpoint["net"]["aspect_ratios"] == NET.aspect_ratios[:3]


def _copy_with(tmp_path: Path, graph: onnx.ModelProto | bytes) -> Path:
    card = tmp_path / CARD.name
    shutil.copy(CARD, card)
    onnx_file = card.with_suffix(".onnx")
    onnx_file.write_bytes(graph if isinstance(graph, bytes) else graph.SerializeToString())
    return card


@pytest.mark.parametrize("net, message", [
    (replace(NET, fpn_channels=64), "the convolution at fpn.lat_layers.0 has weights (96, 80, 1, 1), the config's "
                                    "net edgeseg_yolact_road (64, 80, 1, 1): a graph of another net"),
    (replace(NET, aspect_ratios=(1.0, 2.0, 0.5, 0.25)), "its priors (18780, 4) are not the ones the config's net "
                                                        "makes at 640x352 (18780, 4) (other anchors)"),
])
def test_a_graph_of_another_net_is_refused_in_one_line(net, message):
    with pytest.raises(EdgeSegError) as e:
        onnx_checkpoint(CARD, net)
    assert str(e.value) == f"{CARD.with_suffix('.onnx')}: {message}"


def test_other_models_and_broken_files_are_refused_in_one_line(tmp_path):
    semantic = ENGINES / "edgeseg_road_s.yaml"
    with pytest.raises(EdgeSegError) as e:
        onnx_checkpoint(semantic, NET)
    assert str(e.value) == f"{semantic}: a semantic model (logits output), not a YOLACT one"

    card = _copy_with(tmp_path, b"\x08\x07not a protobuf")
    with pytest.raises(EdgeSegError) as e:
        onnx_checkpoint(card, NET)
    message = str(e.value)
    assert message.startswith(f"{card.with_suffix('.onnx')}: not a loadable ONNX model") and "\n" not in message

    graph = onnx.load(str(CARD.with_suffix(".onnx")))  # the priors computed rather than stored
    node = next(n for n in graph.graph.node if n.output[0] == "priors")
    node.op_type, node.input[:] = "Identity", [graph.graph.node[0].output[0]]
    del node.attribute[:]
    with pytest.raises(EdgeSegError) as e:
        onnx_checkpoint(_copy_with(tmp_path, graph), NET)
    assert str(e.value) == f"{card.with_suffix('.onnx')}: output 'priors' is not stored: not one of our YOLACT exports"

    graph = onnx.load(str(CARD.with_suffix(".onnx")))  # a bias computed by another node instead of stored
    conv = next(n for n in graph.graph.node if n.op_type == "Conv" and len(n.input) > 2)
    graph.graph.node.insert(0, onnx.helper.make_node("Relu", [conv.input[2]], ["moved_bias"]))
    conv.input[2] = "moved_bias"
    with pytest.raises(EdgeSegError) as e:
        onnx_checkpoint(_copy_with(tmp_path, graph), NET)
    assert str(e.value) == (f"{card.with_suffix('.onnx')}: the bias of the convolution at backbone.layers.0.0 is not "
                            "stored in the file")
