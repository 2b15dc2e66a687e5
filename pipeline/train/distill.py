"""Train a factorised YOLACT against the dense net it was made from, as well as against the ground truth.

A separable net (``YolactConfig.separable``) built from a dense checkpoint has the same input size, priors and
outputs as that dense net run at the same size, so the dense net can label every prior: its class
distribution, its box offsets and its mask coefficients, and every prototype pixel. Ground truth gives a few
matched priors per object; the teacher gives thousands of soft targets per image, including the near misses
that decide AP at a low score threshold, so the factorised net recovers the dense net's accuracy in fewer
epochs (Hinton et al., "Distilling the knowledge in a neural network", 2015; Chen et al., "Learning efficient
object detection models with knowledge distillation", NeurIPS 2017, for detectors; measured for our road net
in the README). The ground-truth losses stay, so the student can also do better than its teacher.

The prior terms are summed over priors and divided by the teacher's confidence summed over the priors it is
confident about (foreground probability above ``confident``), which plays the part of the ground-truth
losses' number of positives (at least one per image), so their scale does not depend on the input size:
- class: KL(teacher || student), over the priors either net gives a foreground probability above ``active``
  (the evaluation threshold: the rest are background to both and never become detections);
- box and coefficients: smooth L1 to the teacher's, over the confident priors, weighted by the confidence;
- prototypes: mean squared error relative to the teacher's mean square.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import onnxruntime as ort
import torch
from torch.nn import functional as F

from pipeline.modelcard import YOLACT_OUTPUTS, InputSpec
from pipeline.nets.yolact import Yolact, YolactConfig, YolactTrainOutput
from pipeline.nets.yolact_export import export_yolact_onnx
from pipeline.train.warm_start import warm_start


@dataclass(frozen=True)
class DistillConfig:
    """The terms' weights (a training config's ``distill`` key sets them) and the two probability cuts."""

    conf: float = 1.0  # weight of the class term
    box: float = 1.0
    coeff: float = 1.0
    proto: float = 1.0
    # A prior below this foreground probability in both nets never becomes a detection: the evaluation's
    # score threshold (the official 0.05), under which AP stops looking.
    active: float = 0.05
    # The teacher's box and coefficients are targets only where it believes in an object: its display score
    # threshold (the card's 0.3); below it, its boxes are guesses the student should not copy.
    confident: float = 0.3


def dense_teacher(cfg: YolactConfig, checkpoint: dict, device: torch.device) -> Yolact:
    """The dense form of the net ``cfg`` describes (same input size and priors) with ``checkpoint``'s weights,
    frozen, in eval mode (its outputs: box offsets, class probabilities, coefficients, prototypes)."""
    dense = Yolact(replace(cfg, separable=False)).to(device)
    warm_start(dense, checkpoint["model"], tuple(checkpoint["net"]["aspect_ratios"]))
    return dense.eval().requires_grad_(False)


class Teacher:
    """The teacher's eval-mode outputs for a training batch. On a CPU the net runs as an ONNX file in ONNX
    Runtime, ~3.5x faster than torch's forward there (measured at 896x496, batch 8, 2 threads: 1.3 s against
    4.9 s; the training step itself takes ~4 s); on a GPU it stays a torch module."""

    def __init__(self, net: Yolact, spec: InputSpec, workdir: Path, device: torch.device, threads: int) -> None:
        self.name = spec.name
        self.net = None if device.type == "cpu" else net
        self.session: ort.InferenceSession | None = None
        if self.net is None:
            path = export_yolact_onnx(net, workdir / "teacher.onnx", spec).path  # checked against torch
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.net is not None:
            return self.net(x)
        outputs = self.session.run(list(YOLACT_OUTPUTS[:4]), {self.name: x.numpy()})
        return tuple(torch.from_numpy(o) for o in outputs)


class DistillLoss:
    """The distillation terms for a batch, from the student's training outputs and the teacher's eval outputs."""

    def __init__(self, cfg: DistillConfig = DistillConfig()) -> None:
        self.cfg = cfg

    def __call__(self, student: YolactTrainOutput, teacher: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        """``teacher``: the eval-mode outputs (loc, conf probabilities, coefficients, proto) of the dense net on
        the same batch. Returns the weighted terms, keyed ``distill_<term>``."""
        t_loc, t_conf, t_coeff, t_proto = teacher
        c = self.cfg
        log_p = F.log_softmax(student.conf_logits, dim=-1)
        t_fg = 1.0 - t_conf[..., 0]
        s_fg = 1.0 - log_p[..., 0].detach().exp()
        active = (t_fg > c.active) | (s_fg > c.active)
        weight = t_fg * (t_fg > c.confident)
        # about the number of positives, as the ground-truth losses divide by; a batch the teacher finds empty
        # must not blow the class term up by the thousands of priors a student false positive makes active
        norm = weight.sum().clamp_min(float(t_fg.shape[0]))
        kl = (t_conf * (t_conf.clamp_min(1e-8).log() - log_p)).sum(-1)
        conf = (kl * active).sum() / norm
        box = (F.smooth_l1_loss(student.loc, t_loc, reduction="none").sum(-1) * weight).sum() / norm
        coeff = (F.smooth_l1_loss(student.mask, t_coeff, reduction="none").sum(-1) * weight).sum() / norm
        proto = F.mse_loss(student.proto, t_proto) / t_proto.pow(2).mean().clamp_min(1e-6)
        return {"distill_conf": c.conf * conf, "distill_box": c.box * box, "distill_coeff": c.coeff * coeff,
                "distill_proto": c.proto * proto}
