"""Warm-starting a YOLACT with an extra anchor aspect ratio, or with factorised convolutions, from a checkpoint
without them."""

from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch", reason="warm starts need torch (the `train` extra)")

from pipeline.errors import EdgeSegError  # noqa: E402
from pipeline.nets.yolact import Yolact, config_by_name  # noqa: E402
from pipeline.train.warm_start import anchor_sources, warm_start  # noqa: E402


def _net(ratios: tuple[float, ...], separable: bool = False) -> Yolact:
    cfg = replace(config_by_name("edgeseg_yolact_road"), input_size=(96, 96), anchor_norm=(96.0, 96.0),
                  aspect_ratios=ratios, separable=separable)
    return Yolact(cfg).eval()


def test_anchor_sources_keep_old_places_and_copy_the_nearest_ratio():
    assert anchor_sources((1.0, 0.5, 2.0), (1.0, 0.5, 2.0, 0.25)) == [0, 1, 2, 1]
    assert anchor_sources((1.0, 0.5, 2.0), (1.0, 0.5, 2.0, 3.0)) == [0, 1, 2, 2]
    with pytest.raises(EdgeSegError, match="do not extend"):
        anchor_sources((1.0, 0.5, 2.0), (0.5, 1.0, 2.0, 0.25))


def test_widened_net_reproduces_the_old_anchors_and_copies_the_new_one():
    torch.manual_seed(0)
    old, new = _net((1.0, 0.5, 2.0)), _net((1.0, 0.5, 2.0, 0.25))
    assert warm_start(new, old.state_dict(), (1.0, 0.5, 2.0)).new_anchors == 1
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        old_out, new_out = old(x), new(x)
    # loc, conf, mask are (1, cells x anchors, D); proto is shared
    for o, n in zip(old_out[:3], new_out[:3]):
        o = o.reshape(-1, 3, o.shape[-1])
        n = n.reshape(-1, 4, n.shape[-1])
        assert torch.allclose(n[:, :3], o, atol=1e-6)
        assert torch.allclose(n[:, 3], o[:, 1], atol=1e-6)
    assert torch.allclose(new_out[3], old_out[3])


def test_a_checkpoint_of_another_shape_is_one_line():
    state = _net((1.0, 0.5, 2.0)).state_dict()
    state["fpn.lat_layers.0.weight"] = torch.zeros(3, 3, 1, 1)
    with pytest.raises(EdgeSegError, match="fpn.lat_layers.0.weight has shape"):
        warm_start(_net((1.0, 0.5, 2.0, 0.25)), state, (1.0, 0.5, 2.0))
    del state["fpn.lat_layers.0.weight"]
    with pytest.raises(EdgeSegError, match="lacks 1 of the net's weights"):
        warm_start(_net((1.0, 0.5, 2.0, 0.25)), state, (1.0, 0.5, 2.0))


def test_separable_net_from_a_dense_checkpoint_keeps_all_but_the_factorised_layers():
    torch.manual_seed(0)
    dense = _net((1.0, 0.5, 2.0, 0.25))
    torch.manual_seed(1)
    new = _net((1.0, 0.5, 2.0, 0.25), separable=True)
    own = {k: v.clone() for k, v in new.state_dict().items()}
    started = warm_start(new, dense.state_dict(), (1.0, 0.5, 2.0, 0.25))
    assert started.new_anchors == 0
    assert started.fresh_layers == ("fpn.pred_layers.0", "fpn.pred_layers.1", "fpn.pred_layers.2",
                                    "prediction_layers.0.bbox_layer", "prediction_layers.0.conf_layer",
                                    "prediction_layers.0.mask_layer", "prediction_layers.0.upfeature.0",
                                    "proto_net.0", "proto_net.2", "proto_net.4", "proto_net.8")
    got, old = new.state_dict(), dense.state_dict()
    for key, value in got.items():
        if key in old:  # backbone, laterals, downsampling, last ProtoNet layer, semantic head
            assert torch.equal(value, old[key]), key
        else:
            assert key.rsplit(".", 2)[0] in started.fresh_layers and torch.equal(value, own[key]), key
    assert sum(key in old for key in got) > 200


def test_a_separable_checkpoint_does_not_fit_a_dense_net():
    state = _net((1.0, 0.5, 2.0, 0.25), separable=True).state_dict()
    with pytest.raises(EdgeSegError, match="lacks 22 of the net's weights"):
        warm_start(_net((1.0, 0.5, 2.0, 0.25)), state, (1.0, 0.5, 2.0, 0.25))
