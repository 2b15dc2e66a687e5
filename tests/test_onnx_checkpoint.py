"""pipeline.train.onnx_checkpoint on the shipped road YOLACT: the weights read back from the ONNX file
reproduce it, in eval mode and, on the images that set the norms' statistics, in training mode too."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.errors import EdgeSegError
from pipeline.modelcard import load_card
from pipeline.preprocess import Preprocessor
from pipeline.synth import SynthWorld

torch = pytest.importorskip("torch", reason="reading a model back for training needs torch (the `train` extra)")

from pipeline.nets.yolact import Yolact, config_by_name  # noqa: E402
from pipeline.train.onnx_checkpoint import onnx_checkpoint  # noqa: E402

ENGINES = Path(__file__).resolve().parents[1] / "engines"
CARD = ENGINES / "edgeseg_yolact_road.yaml"
NET = config_by_name("edgeseg_yolact_road")


def test_the_shipped_file_reads_back_as_a_net_that_trains_from_the_same_function():
    world, pre = SynthWorld(seed=9000, size=(640, 360)), Preprocessor(load_card(CARD).card.input)
    images = torch.from_numpy(pre([world.render(k).frame.image for k in (0, 10, 20)]))
    checkpoint = onnx_checkpoint(CARD.with_suffix(".onnx"), NET, [images])  # the .onnx stands for its card
    assert checkpoint["input"]["width"] == 640 and checkpoint["net"]["separable"] is False
    net = Yolact(NET)
    net.load_state_dict(checkpoint["model"])
    with torch.no_grad():
        loc, conf, mask, proto = net.eval()(images)
        trained = net.train()(images)  # each norm divides by this batch's statistics
    assert float((trained.loc - loc).abs().max()) < 1e-4
    assert float((trained.conf_logits.softmax(-1) - conf).abs().max()) < 1e-4
    assert float((trained.mask - mask).abs().max()) < 1e-4 and float((trained.proto - proto).abs().max()) < 1e-4
    assert conf[..., 1:].max() > 0.9  # the shipped net finds the road users, its scores not flattened


def test_without_images_the_weights_still_reproduce_the_file_in_eval_mode():
    checkpoint = onnx_checkpoint(CARD, NET)  # raises if ONNX Runtime and torch disagree
    norms = [k for k in checkpoint["model"] if k.endswith("running_var")]
    assert norms and all(bool((checkpoint["model"][k] == checkpoint["model"][k][0]).all()) for k in norms)


def _copy_with(tmp_path: Path, onnx_bytes: bytes | None = None) -> Path:
    card = tmp_path / CARD.name
    shutil.copy(CARD, card)
    onnx_file = card.with_suffix(".onnx")
    if onnx_bytes is None:
        shutil.copy(CARD.with_suffix(".onnx"), onnx_file)
    else:
        onnx_file.write_bytes(onnx_bytes)
    return card


@pytest.mark.parametrize("net, message", [
    (replace(NET, fpn_channels=64), "convolution 48 has weights (96, 80, 1, 1), the config's net "
                                    "edgeseg_yolact_road (64, 80, 1, 1) there: a graph of another net"),
    (replace(NET, aspect_ratios=(1.0, 2.0, 0.5, 0.25)), "its priors (18780, 4) are not the ones the config's net "
                                                        "makes at 640x352 (18780, 4) (other anchors)"),
])
def test_a_graph_of_another_net_is_refused_in_one_line(net, message):
    with pytest.raises(EdgeSegError) as e:
        onnx_checkpoint(CARD, net)
    assert str(e.value) == f"{CARD.with_suffix('.onnx')}: {message}"


def test_a_semantic_card_or_an_unreadable_file_is_refused_in_one_line(tmp_path):
    semantic = ENGINES / "edgeseg_road_s.yaml"
    with pytest.raises(EdgeSegError) as e:
        onnx_checkpoint(semantic, NET)
    assert str(e.value) == f"{semantic}: a semantic model (logits output), not a YOLACT one"
    card = _copy_with(tmp_path, b"\x08\x07not a protobuf")
    with pytest.raises(EdgeSegError) as e:
        onnx_checkpoint(card, NET)
    assert str(e.value).startswith(f"{card.with_suffix('.onnx')}: cannot be read as ONNX") and "\n" not in str(e.value)
