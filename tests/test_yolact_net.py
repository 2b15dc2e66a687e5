"""Our YOLACT in torch: official checkpoint layout, anchors, feature sizes and both forward modes.

The key/shape fingerprints below were taken from the official code itself (dbolya/yolact and
haotian-liu/yolact_edge at their current default branches, each config's ``Yolact()`` state_dict, keys
sorted, one ``key:shape`` line each, sha256) by the comparison run recorded in the README; the test
rebuilds the same listing from our modules, renamed to the official layout, so any drift in a module
name, index or shape fails it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pipeline.nets.yolact import CONFIGS, Yolact, YolactTrainOutput, config_by_name, make_priors  # noqa: E402

# config -> (number of keys, sha256 prefix of the sorted "key:shape" listing of the official state_dict)
OFFICIAL_KEYS = {
    "yolact_base": (660, "0cc8699f57221776"),
    "yolact_im400": (660, "0cc8699f57221776"),
    "yolact_im700": (660, "0cc8699f57221776"),
    "yolact_resnet50": (354, "b0090f01f2b93f28"),
    "yolact_darknet53": (348, "24f12393e079e449"),
    "yolact_resnet50_pascal": (354, "7361ddb51df0a581"),
    "yolact_edge": (660, "09dcedb1a5ab73eb"),
    "yolact_edge_resnet50": (354, "7cb21f49b24e6471"),
    "yolact_edge_mobilenetv2": (348, "343b1c9d1cebe096"),
}


def official_layout(state: dict, layout: str) -> dict:
    """Our keys as the official repository saves them: YolactEdge splits the FPN into fpn_phase_1 (the
    lateral convs) and fpn_phase_2 (the rest)."""
    if layout == "yolact":
        return dict(state)

    def rename(key: str) -> str:
        if key.startswith("fpn.lat_layers."):
            return "fpn_phase_1." + key.removeprefix("fpn.")
        return "fpn_phase_2." + key.removeprefix("fpn.") if key.startswith("fpn.") else key

    return {rename(k): v for k, v in state.items()}


def key_fingerprint(state: dict) -> tuple[int, str]:
    text = "\n".join(f"{k}:{'x'.join(map(str, v.shape))}" for k, v in sorted(state.items()))
    return len(state), hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize("name", list(OFFICIAL_KEYS))
def test_state_dict_keys_and_shapes_match_the_official_code(name):
    cfg = config_by_name(name)
    with torch.device("meta"):  # shapes only: no memory, no init cost (ResNet-101 has 50 M parameters)
        model = Yolact(cfg)
    assert key_fingerprint(official_layout(model.state_dict(), cfg.checkpoint_layout)) == OFFICIAL_KEYS[name]


def official_priors(cfg, sizes) -> np.ndarray:
    """The anchor loop of the official PredictionModule.make_priors (v1 configs: one scale per level,
    preapply_sqrt False, use_pixel_scales True), written out as there."""
    data = []
    for (conv_h, conv_w), scale in zip(sizes, cfg.anchor_scales):
        for j in range(conv_h):
            for i in range(conv_w):
                x, y = (i + 0.5) / conv_w, (j + 0.5) / conv_h
                for ar in cfg.aspect_ratios:
                    ar = math.sqrt(ar)
                    w, h = scale * ar / cfg.anchor_norm[0], scale / ar / cfg.anchor_norm[1]
                    if cfg.square_anchors:
                        h = w
                    data += [x, y, w, h]
    return np.asarray(data, np.float32).reshape(-1, 4)


@pytest.mark.parametrize("name", ["yolact_base", "yolact_im400", "yolact_resnet50_pascal", "edgeseg_yolact_road"])
def test_priors_follow_the_official_loop_and_order(name):
    cfg = config_by_name(name)
    with torch.device("meta"):
        model = Yolact(cfg)
    assert model.priors.shape == (sum(h * w for h, w in model.feature_sizes) * cfg.anchors_per_cell, 4)
    assert cfg.anchors_per_cell == (4 if name == "edgeseg_yolact_road" else 3)  # ours adds a tall 1:4 anchor
    assert model.prior_levels.shape == model.priors.shape[:1] and model.prior_cells.shape == (model.priors.shape[0], 2)
    priors = make_priors(cfg, model.feature_sizes).numpy()  # the meta buffer has no values
    np.testing.assert_array_equal(priors, official_priors(cfg, model.feature_sizes))


def test_base_config_facts():
    """550 input: P3..P7 of 69, 35, 18, 9, 5 (the top-down path upsamples 18 -> 35 -> 69, not x2), 19,248
    square anchors; the first is 24 px wide at 550, the second 24 * sqrt(1/2) px, with equal height."""
    cfg = CONFIGS["yolact_base"]
    with torch.device("meta"):
        model = Yolact(cfg)
    assert model.feature_sizes == [(69, 69), (35, 35), (18, 18), (9, 9), (5, 5)]
    priors = make_priors(cfg, model.feature_sizes).numpy()
    assert priors.shape == (19248, 4)
    np.testing.assert_allclose(priors[0], [0.5 / 69, 0.5 / 69, 24 / 550, 24 / 550], rtol=1e-6)
    np.testing.assert_allclose(priors[1], [0.5 / 69, 0.5 / 69, 24 * 0.5 ** 0.5 / 550, 24 * 0.5 ** 0.5 / 550], rtol=1e-6)
    np.testing.assert_allclose(priors[3, :2], [1.5 / 69, 0.5 / 69], rtol=1e-6)  # per x before per y
    np.testing.assert_allclose(priors[-1], [4.5 / 5, 4.5 / 5, 384 * 2 ** 0.5 / 550, 384 * 2 ** 0.5 / 550], rtol=1e-6)
    assert CONFIGS["yolact_im400"].anchor_scales == (17, 34, 69, 139, 279)  # int(x / 550 * 400), as data/config.py


def _small(cfg, size=(130, 98)):
    """The config at a small, odd, non-square input: every ceil(n / 2) and every w/h swap shows."""
    return replace(cfg, input_size=size)


@pytest.mark.parametrize("name", ["yolact_resnet50", "yolact_darknet53", "yolact_edge_mobilenetv2", "edgeseg_yolact_road"])
def test_eval_forward_matches_the_precomputed_priors_and_contract(name):
    cfg = _small(CONFIGS[name])
    torch.manual_seed(0)
    model = Yolact(cfg).eval()
    x = torch.randn(2, 3, cfg.input_size[1], cfg.input_size[0])
    with torch.no_grad():
        loc, conf, mask, proto = model(x)
    p = model.priors.shape[0]
    h3, w3 = model.feature_sizes[0]
    assert loc.shape == (2, p, 4) and conf.shape == (2, p, cfg.num_classes + 1) and mask.shape == (2, p, cfg.mask_dim)
    assert proto.shape == (2, 2 * h3, 2 * w3, cfg.mask_dim)  # prototypes at twice P3, channels last
    torch.testing.assert_close(conf.sum(-1), torch.ones(2, p))  # softmax over background + classes
    assert mask.abs().max() <= 1 and proto.min() >= 0  # tanh coefficients, ReLU prototypes
    assert model.priors.shape == (p, 4)


def test_training_forward_gives_raw_logits_and_the_semantic_head():
    cfg = _small(CONFIGS["edgeseg_yolact_road"])
    torch.manual_seed(0)
    model = Yolact(cfg)
    x = torch.randn(2, 3, cfg.input_size[1], cfg.input_size[0])
    model.eval()
    with torch.no_grad():
        _, conf, mask, _ = model(x)
    model.train()
    for m in model.modules():  # batch statistics would change the features: compare with running stats
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, YolactTrainOutput)
    torch.testing.assert_close(out.conf_logits.softmax(-1), conf)
    torch.testing.assert_close(out.mask, mask)
    assert out.segm.shape == (2, cfg.num_classes, *model.feature_sizes[0])
    assert out.priors is model.priors


def test_unused_backbone_tail_and_semantic_head_are_not_inference_parameters():
    """MobileNetV2's 320- and 1280-channel layers (after the deepest selected stage, 6) are in the
    checkpoints but never computed; the semantic head is training only."""
    model = Yolact(CONFIGS["yolact_edge_mobilenetv2"])
    tail = sum(p.numel() for layer in model.backbone.layers[7:] for p in layer.parameters())
    semantic = sum(p.numel() for p in model.semantic_seg_conv.parameters())
    assert tail > 400_000 and semantic == 256 * 80 + 80
    assert model.inference_parameters() == sum(p.numel() for p in model.parameters()) - tail - semantic


def test_separable_net_factorises_every_3x3_after_the_backbone_and_exports(tmp_path):
    """The factorised road net: each dense 3x3 of FPN/ProtoNet/head becomes depthwise (groups = channels, no
    bias) + pointwise 1x1, the outputs keep their contract, and ONNX Runtime reproduces torch."""
    from pipeline.importers.yolact import input_spec
    from pipeline.nets.yolact_export import export_yolact_onnx

    dense_cfg = _small(CONFIGS["edgeseg_yolact_road"])
    cfg = replace(dense_cfg, separable=True)
    torch.manual_seed(0)
    dense, model = Yolact(dense_cfg), Yolact(cfg).eval()
    dense_3x3 = {name for name, m in dense.named_modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)
                 and m.stride == (1, 1) and not name.startswith("backbone")}
    assert len(dense_3x3) == 11  # 3 FPN outputs, 4 ProtoNet, upfeature, box, class, coefficients
    modules, dense_modules = dict(model.named_modules()), dict(dense.named_modules())
    for name in dense_3x3:
        dw, pw = modules[f"{name}.0"], modules[f"{name}.1"]
        assert dw.groups == dw.in_channels == dw.out_channels and dw.kernel_size == (3, 3) and dw.bias is None
        assert pw.kernel_size == (1, 1) and pw.out_channels == dense_modules[name].out_channels
    saved = sum((m.in_channels * 8) * (m.out_channels - 1) - m.in_channels  # cin*cout*9 vs cin*9 + cin*cout
                for m in (dense_modules[name] for name in dense_3x3))
    assert dense.inference_parameters() - model.inference_parameters() == saved
    x = torch.randn(2, 3, cfg.input_size[1], cfg.input_size[0])
    with torch.no_grad():
        loc, conf, mask, proto = model(x)
    assert loc.shape == (2, model.priors.shape[0], 4) and proto.shape[-1] == cfg.mask_dim
    torch.testing.assert_close(conf.sum(-1), torch.ones(conf.shape[:2]))
    exported = export_yolact_onnx(model, tmp_path / "sep.onnx", input_spec(cfg))
    assert max(exported.max_abs_diff.values()) < 1e-4


def test_unknown_config_name():
    with pytest.raises(KeyError):
        config_by_name("yolact_nope")
