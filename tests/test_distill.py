"""Distilling a factorised YOLACT from its dense form (pipeline/train/distill.py): the loss is zero when the
student reproduces the teacher and grows with each kind of disagreement, background both nets agree on is
ignored, a false positive on an image the teacher finds empty costs per image, and the CPU teacher (ONNX
Runtime) gives the dense torch net's outputs."""

from __future__ import annotations

from dataclasses import asdict, replace

import pytest

torch = pytest.importorskip("torch", reason="distillation needs torch (the `train` extra)")

from pipeline.modelcard import InputSpec  # noqa: E402
from pipeline.nets.yolact import Yolact, YolactTrainOutput, config_by_name  # noqa: E402
from pipeline.train.distill import DistillConfig, DistillLoss, Teacher, dense_teacher  # noqa: E402

CFG = replace(config_by_name("edgeseg_yolact_road"), input_size=(96, 64), anchor_norm=(96.0, 64.0))


def _teacher_outputs(priors: int = 50, classes: int = 4, k: int = 8) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(0)
    logits = torch.randn(2, priors, classes)
    logits[:, 10:, 0] += 12.0  # priors 10.. are confidently background
    return (torch.randn(2, priors, 4), torch.softmax(logits, -1), torch.tanh(torch.randn(2, priors, k)),
            torch.relu(torch.randn(2, 6, 5, k)))


def _student(loc, probs, coeff, proto) -> YolactTrainOutput:
    return YolactTrainOutput(loc=loc.clone(), conf_logits=probs.log().clone(), mask=coeff.clone(), proto=proto.clone(),
                             segm=torch.zeros(2, 3, 6, 5), priors=torch.zeros(loc.shape[1], 4))


def test_a_student_that_reproduces_the_teacher_has_zero_loss_and_every_disagreement_costs():
    teacher = _teacher_outputs()
    loss = DistillLoss(DistillConfig(conf=1.0, box=1.0, coeff=1.0, proto=1.0))
    same = loss(_student(*teacher), teacher)
    assert set(same) == {"distill_conf", "distill_box", "distill_coeff", "distill_proto"}
    assert all(abs(v.item()) < 1e-5 for v in same.values())
    nudges = {"loc": ("distill_box", 0.5), "conf_logits": ("distill_conf", torch.tensor([0.0, 2.0, -1.0, 0.5])),
              "mask": ("distill_coeff", 0.5), "proto": ("distill_proto", 0.5)}
    for field, (term, nudge) in nudges.items():
        student = _student(*teacher)
        value = getattr(student, field)
        value[:, :10] += nudge  # the first ten priors (the teacher's foreground), or proto rows
        got = loss(student, teacher)
        assert got[term].item() > 1e-3, field
        assert all(abs(v.item()) < 1e-5 for k, v in got.items() if k != term), field


def test_background_both_nets_agree_on_costs_nothing_but_a_student_false_positive_does():
    teacher = _teacher_outputs()
    loss = DistillLoss(DistillConfig())
    quiet = _student(*teacher)
    quiet.conf_logits[:, 20:, 1] -= 3.0  # still background to both, below the 0.05 evaluation threshold
    assert loss(quiet, teacher)["distill_conf"].item() < 1e-5
    loud = _student(*teacher)
    loud.conf_logits[:, 20:, 1] += 14.0  # the student now fires where the teacher sees background
    assert loss(loud, teacher)["distill_conf"].item() > 1.0


def test_on_images_the_teacher_finds_empty_a_false_positive_costs_the_same_per_image_in_any_batch():
    loc, probs, coeff, proto = _teacher_outputs()
    probs = torch.zeros_like(probs)
    probs[..., 0] = 0.99  # background everywhere: nothing confident, so no positives to divide by
    probs[..., 1:] = 0.01 / 3
    student = _student(loc, probs, coeff, proto)
    student.conf_logits[:, :5, 1] += 8.0  # five false positives in each image
    loss = DistillLoss(DistillConfig())
    both = loss(student, (loc, probs, coeff, proto))["distill_conf"].item()
    one = replace(student, **{f: getattr(student, f)[:1] for f in ("loc", "conf_logits", "mask", "proto", "segm")})
    first = loss(one, (loc[:1], probs[:1], coeff[:1], proto[:1]))["distill_conf"].item()
    assert first > 1.0 and both == pytest.approx(first, rel=1e-5)  # a batch of two costs what one image does


def test_weights_scale_their_terms_and_gradients_reach_the_student():
    teacher = _teacher_outputs()
    student = _student(*teacher)
    student.loc.add_(0.3).requires_grad_(True)
    one = DistillLoss(DistillConfig(box=1.0))(student, teacher)["distill_box"]
    three = DistillLoss(DistillConfig(box=3.0))(student, teacher)["distill_box"]
    torch.testing.assert_close(three, 3 * one)
    one.backward()
    assert student.loc.grad[:, :10].abs().sum() > 0  # confident priors pull the boxes
    assert student.loc.grad[:, 10:].abs().sum() == 0  # background priors' boxes have no target


def test_the_cpu_teacher_runs_the_dense_net_in_onnx_runtime_with_the_torch_outputs(tmp_path):
    torch.manual_seed(3)
    checkpoint = {"model": Yolact(CFG).state_dict(), "net": asdict(CFG)}
    net = dense_teacher(replace(CFG, separable=True), checkpoint, torch.device("cpu"))
    assert not net.cfg.separable and not net.training and not any(p.requires_grad for p in net.parameters())
    spec = InputSpec(width=96, height=64, color_order="RGB", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    teacher = Teacher(net, spec, tmp_path, torch.device("cpu"), threads=1)
    assert (tmp_path / "teacher.onnx").is_file()
    x = torch.randn(3, 3, 64, 96)
    with torch.no_grad():
        want = net(x)
    got = teacher(x)
    assert len(got) == 4
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)
