"""A training checkpoint from one of our exported YOLACT files, so training can start from what engines/ ships.

Checkpoints live in runs/ and go when the machine that wrote them goes; the shipped ONNX file is in git. Its
graph holds the same weights, except that the export folded every BatchNorm into the convolution before it:
the graph's weight is W' = W * g / s and its bias b' = beta + (b - mu) * g / s, and g, beta, mu and s cannot be
told apart again. Every split with the same W' and b' computes the shipped function in eval mode. This one
also starts out computing it in training mode, where a norm divides by each batch's own statistics: the
convolution keeps W', the norm's running mean and variance are those of W'x over real training images, and
its affine part multiplies that spread back and adds b' (the mean back too). A warm start from a file whose
norms were set to the identity would instead begin by renormalising every layer, far from the shipped net.

Only what the graph computes comes back: the training-only semantic head and backbone stages after the
deepest one the FPN reads keep their fresh initialisation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
import torch
from google.protobuf.message import DecodeError
from torch import nn

from pipeline.errors import EdgeSegError
from pipeline.modelcard import YOLACT_OUTPUTS, InputSpec, load_card
from pipeline.nets.export import EXPORT_RTOL, check_input
from pipeline.nets.yolact import Yolact, YolactConfig


def onnx_checkpoint(source: Path, net_cfg: YolactConfig, images: Iterable[torch.Tensor] = ()) -> dict:
    """The checkpoint (``model``, ``net``, ``input``) of the YOLACT file whose model card is ``source`` (the
    ``.onnx`` file stands for the card beside it), as the dense form of ``net_cfg`` at the card's input size.

    ``images`` (preprocessed batches, consumed only here) set the norms' statistics; without them the norms
    are exact in eval mode only, which is all a teacher needs. Raises :class:`EdgeSegError` (one line) for a
    card of another kind of model, a graph of another net, or weights that do not reproduce the file."""
    card_path = source.with_suffix(".yaml") if source.suffix == ".onnx" else source
    loaded = load_card(card_path)
    card = loaded.card
    if card.output.kind != "yolact":
        raise EdgeSegError(f"{card_path}: a {card.task} model ({card.output.kind} output), not a YOLACT one")
    spec = card.input
    size = (spec.width, spec.height)
    scale = (size[0] / net_cfg.input_size[0], size[1] / net_cfg.input_size[1])  # anchors stay in input pixels
    cfg = replace(net_cfg, separable=False, input_size=size,
                  anchor_norm=(net_cfg.anchor_norm[0] * scale[0], net_cfg.anchor_norm[1] * scale[1]))
    try:
        graph = onnx.load(str(loaded.onnx_path))
    except (DecodeError, OSError, ValueError) as e:
        raise EdgeSegError(f"{loaded.onnx_path}: cannot be read as ONNX: {str(e).splitlines()[0]}") from None
    net = Yolact(cfg).eval()
    norms = _load_convolutions(net, graph, loaded.onnx_path)
    _check_priors(net, graph, loaded.onnx_path)
    _set_statistics(net, norms, images)
    _check_outputs(net, loaded.onnx_path, spec)
    return {"model": net.state_dict(), "net": asdict(cfg), "input": spec.model_dump(), "epoch": None}


def _call_order(net: Yolact) -> list[tuple[nn.Conv2d, nn.BatchNorm2d | None]]:
    """``net``'s convolutions in the order a forward pass first calls them (the order the exporter wrote the
    graph in), each with the norm called right after it, if any."""
    calls: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda m, i, o: calls.append(m)) for m in net.modules()
             if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    with torch.no_grad():
        net(torch.zeros(1, 3, net.cfg.input_size[1], net.cfg.input_size[0]))
    for h in hooks:
        h.remove()
    seen: dict[nn.Conv2d, nn.BatchNorm2d | None] = {}
    for k, m in enumerate(calls):
        if isinstance(m, nn.Conv2d) and m not in seen:
            after = calls[k + 1] if k + 1 < len(calls) else None
            seen[m] = after if isinstance(after, nn.BatchNorm2d) and m.bias is None else None
    return list(seen.items())


@torch.no_grad()
def _load_convolutions(net: Yolact, graph: onnx.ModelProto, path: Path) -> dict[nn.BatchNorm2d, torch.Tensor]:
    """Copy the graph's convolutions into ``net`` in call order; a norm after one becomes the identity plus the
    folded bias. Returns each such norm with that bias."""
    weights = {t.name: t for t in graph.graph.initializer}
    nodes, names = [], set()
    for node in graph.graph.node:
        if node.op_type == "Conv" and node.input[1] not in names:  # a shared head is called once per level
            names.add(node.input[1])
            nodes.append(node)
    convs = _call_order(net)
    if len(nodes) != len(convs):
        raise EdgeSegError(f"{path}: {len(nodes)} convolutions, the config's net {net.cfg.name} computes "
                           f"{len(convs)}: a graph of another net")
    norms = {}
    for k, (node, (conv, norm)) in enumerate(zip(nodes, convs)):
        if node.input[1] not in weights:
            raise EdgeSegError(f"{path}: convolution {k} ({node.name}) reads weights the file does not hold")
        w = torch.from_numpy(onnx.numpy_helper.to_array(weights[node.input[1]]).copy())
        if w.shape != conv.weight.shape:
            raise EdgeSegError(f"{path}: convolution {k} has weights {tuple(w.shape)}, the config's net "
                               f"{net.cfg.name} {tuple(conv.weight.shape)} there: a graph of another net")
        b = (torch.from_numpy(onnx.numpy_helper.to_array(weights[node.input[2]]).copy())
             if len(node.input) > 2 and node.input[2] else torch.zeros(w.shape[0]))
        conv.weight.copy_(w)
        if conv.bias is not None:
            conv.bias.copy_(b)
        elif norm is not None:
            norm.weight.fill_(1.0)
            norm.bias.copy_(b)
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)  # divides by exactly 1
            norms[norm] = b
        elif b.abs().max() > 0:
            raise EdgeSegError(f"{path}: convolution {k} has a bias the config's net has no place for")
    return norms


def _check_priors(net: Yolact, graph: onnx.ModelProto, path: Path) -> None:
    """The file's constant priors against the ones the net makes: aspect ratios and anchor scales agree, so
    the checkpoint's anchors are in the order its head predicts them."""
    const = {n.output[0]: n for n in graph.graph.node if n.op_type == "Constant"}
    node = const.get(YOLACT_OUTPUTS[4])
    if node is None:
        raise EdgeSegError(f"{path}: no constant '{YOLACT_OUTPUTS[4]}' output: not one of our YOLACT exports")
    priors = onnx.numpy_helper.to_array(node.attribute[0].t)
    ours = net.priors.numpy()
    if priors.shape != ours.shape or not np.allclose(priors, ours, atol=1e-5):
        raise EdgeSegError(f"{path}: its priors {priors.shape} are not the ones the config's net makes at "
                           f"{net.cfg.input_size[0]}x{net.cfg.input_size[1]} {ours.shape} (other anchors)")


@torch.no_grad()
def _set_statistics(net: Yolact, norms: dict[nn.BatchNorm2d, torch.Tensor], images: Iterable[torch.Tensor]) -> None:
    """Give each norm the mean and (biased, as training mode divides by) variance of its input over
    ``images``, and the affine part that maps them back onto the folded output."""
    sums = {m: [0.0, 0.0, 0] for m in norms}

    def collect(m: nn.BatchNorm2d, inputs: tuple[torch.Tensor], _: torch.Tensor) -> None:
        x = inputs[0].double().transpose(0, 1).flatten(1)
        s = sums[m]
        s[0], s[1], s[2] = s[0] + x.sum(1), s[1] + (x * x).sum(1), s[2] + x.shape[1]

    hooks = [m.register_forward_hook(collect) for m in norms]
    seen = 0
    for x in images:
        net(x)
        seen += len(x)
    for h in hooks:
        h.remove()
    if not seen:
        return  # the identity norms stay
    for m, b in norms.items():
        total, square, n = sums[m]
        mean = total / n
        var = (square / n - mean * mean).clamp_min(0.0)
        m.running_mean.copy_(mean)
        m.running_var.copy_(var)
        m.weight.copy_((var + m.eps).sqrt())
        m.bias.copy_(b + mean)


def _check_outputs(net: Yolact, path: Path, spec: InputSpec) -> None:
    """Eval-mode torch against ONNX Runtime on the export check's input: what training starts from is the
    file."""
    x = check_input(spec, batch=1)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(list(YOLACT_OUTPUTS[:4]), {spec.name: x})
    with torch.no_grad():
        ours = [t.numpy() for t in net(torch.from_numpy(x))]
    for name, g, e in zip(YOLACT_OUTPUTS, got, ours):
        diff = float(np.abs(g - e).max()) if g.shape == e.shape else float("inf")
        if not diff <= EXPORT_RTOL * max(1.0, float(np.abs(g).max())):
            raise EdgeSegError(f"{path}: the weights read back do not reproduce output '{name}' (max diff "
                               f"{diff:.3g}): a graph of another net")
