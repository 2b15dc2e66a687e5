"""Fitting a separable YOLACT's factorised layers to the dense net they replace (pipeline/train/factorise.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch", reason="fitting needs torch (the `train` extra)")

from torch.nn import functional as F  # noqa: E402

from pipeline.nets.yolact import Yolact, config_by_name  # noqa: E402
from pipeline.train.factorise import fit_factorised, rank_one_factors  # noqa: E402
from pipeline.train.warm_start import warm_start  # noqa: E402


def test_rank_one_factors_rebuild_a_kernel_that_is_rank_one_per_input_channel():
    torch.manual_seed(0)
    pointwise, spatial = torch.randn(5, 3), torch.randn(3, 9)
    kernel = (pointwise[:, :, None] * spatial[None]).reshape(5, 3, 3, 3)  # out 5, in 3
    dw, pw = rank_one_factors(kernel)
    assert dw.shape == (3, 1, 3, 3) and pw.shape == (5, 3, 1, 1)
    x = torch.randn(2, 3, 8, 7)
    torch.testing.assert_close(F.conv2d(F.conv2d(x, dw, padding=1, groups=3), pw), F.conv2d(x, kernel, padding=1),
                               atol=1e-5, rtol=1e-4)


def _nets() -> tuple[Yolact, Yolact, tuple[str, ...]]:
    cfg = replace(config_by_name("edgeseg_yolact_road"), input_size=(96, 64), anchor_norm=(96.0, 64.0))
    torch.manual_seed(0)
    dense = Yolact(cfg).eval()
    torch.manual_seed(1)
    net = Yolact(replace(cfg, separable=True)).train()
    return dense, net, warm_start(net, dense.state_dict(), cfg.aspect_ratios).fresh_layers


def test_fit_follows_the_forward_pass_and_brings_the_outputs_to_the_dense_ones():
    dense, net, layers = _nets()
    torch.manual_seed(2)
    images = [torch.randn(2, 3, 64, 96) for _ in range(2)]
    probe = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        want = dense(probe)
        net.eval()
        before = net(probe)
    net.train()
    fits = fit_factorised(net, dense, layers, images, steps=60)
    assert net.training  # left as it was given
    order = [f.layer for f in fits]
    assert sorted(order) == sorted(layers) and len(order) == 11
    # FPN outputs feed the ProtoNet and the head; the head's upfeature feeds its three output layers
    assert max(order.index(f"fpn.pred_layers.{k}") for k in range(3)) < order.index("proto_net.0")
    assert order.index("proto_net.0") < order.index("proto_net.2") < order.index("proto_net.4") < order.index(
        "proto_net.8")
    assert order.index("prediction_layers.0.upfeature.0") < min(
        order.index(f"prediction_layers.0.{n}") for n in ("bbox_layer", "conf_layer", "mask_layer"))
    assert all(f.r2_fitted >= f.r2_rank_one - 1e-3 and f.r2_fitted > 0.5 for f in fits)
    net.eval()
    with torch.no_grad():
        after = net(probe)
    for w, b, a in zip(want, before, after):  # loc, conf, coefficients, prototypes
        assert (a - w).abs().mean() < 0.5 * (b - w).abs().mean()


def test_a_dense_net_of_rank_one_kernels_is_reproduced_by_the_svd_start():
    """Where every dense kernel is exactly rank one per input channel, the SVD start reproduces each layer on
    the factorised net's own inputs (R2 1), also for layers followed by an in-place ReLU, whose outputs the fit
    must see before the ReLU."""
    dense, net, layers = _nets()
    modules = dict(dense.named_modules())
    with torch.no_grad():
        for name in layers:
            dw, pw = rank_one_factors(modules[name].weight)
            modules[name].weight.copy_((pw[:, :, 0, 0, None] * dw[None, :, 0].reshape(1, -1, 9)).reshape(
                modules[name].weight.shape))
    torch.manual_seed(2)
    fits = fit_factorised(net, dense, layers, [torch.randn(2, 3, 64, 96)], steps=0)
    assert all(f.r2_rank_one > 1 - 1e-4 for f in fits), [(f.layer, round(f.r2_rank_one, 4)) for f in fits]
