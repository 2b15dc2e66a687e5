"""Start the factorised layers of a separable YOLACT from the dense net they replace, fitted on real features.

``warm_start`` carries every weight a dense checkpoint shares with a separable net (``YolactConfig.separable``)
but leaves the factorised layers at their random initialisation: the net then relearns its FPN outputs,
prototypes and head from the ground truth alone, which takes many epochs on two CPU cores. Here each
factorised layer (depthwise 3x3 then pointwise 1x1) is instead fitted, by least squares, to reproduce its
dense layer's output on a few training images, in the order the forward pass meets them and on the separable
net's *own* inputs, so each fit absorbs the errors of the layers before it (Jaderberg et al., "Speeding up
convolutional neural networks with low rank expansions", BMVC 2014, fit low-rank layers to the original's
outputs in the same spirit). Each fit starts from the best rank-one factorisation per input channel
(an SVD of the dense kernel). The fitted net is not yet a detector of its own (small errors in the box and
class layers move the few confident priors); training from it is what the fit speeds up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.nets.yolact import Yolact


@dataclass(frozen=True)
class LayerFit:
    layer: str
    r2_rank_one: float  # share of the dense output's variance the SVD start explains
    r2_fitted: float  # after the least-squares fit


def rank_one_factors(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, in, 3, 3) dense kernel -> depthwise (in, 1, 3, 3) and pointwise (out, in, 1, 1) factors whose
    product is, for every input channel, the best rank-one approximation of that channel's (out, 9) slice."""
    out_c, in_c = weight.shape[:2]
    per_channel = weight.permute(1, 0, 2, 3).reshape(in_c, out_c, 9)
    u, s, vh = torch.linalg.svd(per_channel, full_matrices=False)
    root = s[:, :1].sqrt()
    return (vh[:, 0, :] * root).reshape(in_c, 1, 3, 3), (u[:, :, 0] * root).t().reshape(out_c, in_c, 1, 1)


def _calls(model: Yolact, layer: nn.Module, images: list[torch.Tensor], take_input: bool) -> list[torch.Tensor]:
    """Every input (or output) of ``layer`` while ``model`` runs on each batch of ``images`` (a shared head
    runs once per FPN level)."""
    seen: list[torch.Tensor] = []

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        # a copy: the in-place ReLU after most of these layers would otherwise rewrite what was kept
        seen.append((inputs[0] if take_input else output).detach().clone())

    handle = layer.register_forward_hook(hook)
    try:
        with torch.no_grad():
            for batch in images:
                model(batch)
    finally:
        handle.remove()
    return seen


def _forward_order(model: Yolact, names: tuple[str, ...], batch: torch.Tensor) -> list[str]:
    modules = dict(model.named_modules())
    order: list[str] = []
    handles = [modules[n].register_forward_hook(lambda *_a, n=n: order.append(n) if n not in order else None)
               for n in names]
    try:
        with torch.no_grad():
            model(batch[:1])
    finally:
        for h in handles:
            h.remove()
    return order


def fit_factorised(net: Yolact, dense: Yolact, layers: tuple[str, ...], images: list[torch.Tensor], steps: int,
                   lr: float = 3e-3, report: Callable[[LayerFit], None] | None = None) -> list[LayerFit]:
    """Fit ``net``'s factorised ``layers`` (names as ``warm_start`` reports them) to ``dense``'s layers of the
    same names on ``images`` (preprocessed batches at the nets' input size): ``steps`` Adam steps per layer,
    one batch each, the learning rate decaying linearly from ``lr``. Both nets must otherwise hold the same
    weights. Returns each layer's fit, in the order fitted; ``report`` sees each as it is done."""
    was_training = net.training
    net.eval()
    dense.eval()
    mine, theirs = dict(net.named_modules()), dict(dense.named_modules())
    fits = []
    for name in _forward_order(dense, layers, images[0]):
        depthwise, pointwise = mine[name][0], mine[name][1]
        kernel = theirs[name].weight.detach()
        dw0, pw0 = rank_one_factors(kernel)
        with torch.no_grad():
            depthwise.weight.copy_(dw0)
            pointwise.weight.copy_(pw0)
            pointwise.bias.copy_(theirs[name].bias.detach())
        inputs = _calls(net, mine[name], images, take_input=True)
        targets = _calls(dense, theirs[name], images, take_input=False)
        per_batch = len(targets) // len(images)  # FPN levels for the head, 1 elsewhere
        scale = torch.stack([t.var() for t in targets]).mean()

        def loss_of(batch: int) -> torch.Tensor:
            pairs = range(batch * per_batch, (batch + 1) * per_batch)
            return torch.stack([F.mse_loss(pointwise(depthwise(inputs[i])), targets[i]) for i in pairs]).mean() / scale

        def r2() -> float:
            with torch.no_grad():
                return 1.0 - float(torch.stack([loss_of(b) for b in range(len(images))]).mean())

        start = r2()
        params = [depthwise.weight, pointwise.weight, pointwise.bias]
        opt = torch.optim.Adam(params, lr=lr)
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr * (1 - step / steps)
            loss = loss_of(step % len(images))
            opt.zero_grad()
            loss.backward()
            opt.step()
        fits.append(LayerFit(name, start, r2()))
        if report:
            report(fits[-1])
    net.train(was_training)
    return fits
