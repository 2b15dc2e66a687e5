"""The road YOLACT's training configs: both stages load, stage 1's overrides give the three-ratio net its
checkpoint warm-starts stage 2 from, and bad overrides are one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the training tools need torch (the `train` extra)")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from train_yolact import load_config, net_config  # noqa: E402

from pipeline.errors import EdgeSegError  # noqa: E402

CONFIGS = REPO / "tools" / "train_configs"


def test_two_stage_recipe():
    stage1 = load_config(CONFIGS / "edgeseg_yolact_road_stage1.yaml")
    stage2 = load_config(CONFIGS / "edgeseg_yolact_road.yaml")
    net1, net2 = net_config(stage1, Path("s1")), net_config(stage2, Path("s2"))
    assert net1.aspect_ratios == (1.0, 0.5, 2.0) and net2.aspect_ratios == (1.0, 0.5, 2.0, 0.25)
    assert net1.name == net2.name and net1.input_size == net2.input_size
    assert stage2["init"] == f"runs/{stage1['name']}/best.pt"
    assert stage2["loss"] == {"assign": "atss", "soft_masks": True} and not stage1.get("loss")


@pytest.mark.parametrize("overrides, message", [
    ({"colour": 1}, "key 'net_overrides.colour': not a YOLACT config field"),
    ({"anchor_scales": [1.0, 2.0]}, "key 'net_overrides': config edgeseg_yolact_road: 2 anchor scales for 5 FPN levels"),
])
def test_bad_overrides_are_one_line(overrides, message):
    cfg = load_config(CONFIGS / "edgeseg_yolact_road.yaml") | {"net_overrides": overrides}
    with pytest.raises(EdgeSegError) as e:
        net_config(cfg, Path("x.yaml"))
    assert str(e.value) == f"x.yaml: {message}"
