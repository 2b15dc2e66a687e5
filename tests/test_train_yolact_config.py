"""The road YOLACT's training configs: the three stages load, stage 1's overrides give the three-ratio net its
checkpoint warm-starts stage 2 from, stage 3 fine-tunes at the shipped net's 640x352, and bad overrides are
one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the training tools need torch (the `train` extra)")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from train_yolact import load_config, net_config  # noqa: E402

from pipeline.errors import EdgeSegError  # noqa: E402
from pipeline.nets.yolact import config_by_name  # noqa: E402

CONFIGS = REPO / "tools" / "train_configs"


def test_three_stage_recipe():
    stage1 = load_config(CONFIGS / "edgeseg_yolact_road_stage1.yaml")
    stage2 = load_config(CONFIGS / "edgeseg_yolact_road_stage2.yaml")
    stage3 = load_config(CONFIGS / "edgeseg_yolact_road.yaml")
    net1, net2, net3 = (net_config(c, Path(f"s{k}")) for k, c in enumerate((stage1, stage2, stage3), start=1))
    assert net1.aspect_ratios == (1.0, 0.5, 2.0) and net2.aspect_ratios == net3.aspect_ratios == (1.0, 0.5, 2.0, 0.25)
    assert net1.name == net2.name == net3.name
    assert net1.input_size == net2.input_size == (384, 384) and net1.anchor_norm == net2.anchor_norm == (384.0, 384.0)
    # the last stage trains the registered net, so the exported model is what config_by_name describes
    assert net3 == config_by_name(net3.name) and net3.input_size == (640, 352) and net3.anchor_norm == (640.0, 352.0)
    assert stage2["init"] == f"runs/{stage1['name']}/best.pt" and stage3["init"] == f"runs/{stage2['name']}/best.pt"
    assert stage2["loss"] == stage3["loss"] == {"assign": "atss", "soft_masks": True} and not stage1.get("loss")


@pytest.mark.parametrize("overrides, message", [
    ({"colour": 1}, "key 'net_overrides.colour': not a YOLACT config field"),
    ({"anchor_scales": [1.0, 2.0]}, "key 'net_overrides': config edgeseg_yolact_road: 2 anchor scales for 5 FPN levels"),
])
def test_bad_overrides_are_one_line(overrides, message):
    cfg = load_config(CONFIGS / "edgeseg_yolact_road.yaml") | {"net_overrides": overrides}
    with pytest.raises(EdgeSegError) as e:
        net_config(cfg, Path("x.yaml"))
    assert str(e.value) == f"x.yaml: {message}"
