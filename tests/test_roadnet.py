"""RoadNet's contract with training and export: output shapes, deep supervision only in training,
and sizes that are not multiples of 16 (CamVid's 360 rows) still give logits at input size."""

import pytest

torch = pytest.importorskip("torch", reason="RoadNet tests need the train extra (torch)")

from pipeline.nets.roadnet import RoadNet, RoadNetConfig  # noqa: E402


def test_eval_mode_returns_logits_at_input_size():
    model = RoadNet().eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 360, 480))
    assert out.shape == (2, 11, 360, 480)


def test_training_mode_adds_auxiliary_head():
    model = RoadNet(RoadNetConfig(num_classes=5)).train()
    logits, aux = model(torch.randn(2, 3, 72, 100))
    assert logits.shape == aux.shape == (2, 5, 72, 100)
    (logits.mean() + aux.mean()).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_odd_sizes_survive_the_decoder():
    model = RoadNet().eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 97, 131))
    assert out.shape[-2:] == (97, 131)


def test_layers_are_fusable_conv_bn_relu_only():
    """ONNX Runtime fuses Conv+BN+ReLU; PReLU or other activations would cost 20-30 % on CPU."""
    kinds = {type(m).__name__ for m in RoadNet().modules() if not list(m.children())}
    assert kinds <= {"Conv2d", "BatchNorm2d", "ReLU"}, kinds
