"""A training checkpoint from one of our exported YOLACT files, so training can start from what engines/ ships.

Checkpoints live in runs/ and go when the machine that wrote them goes; the shipped ONNX file is in git. Its
graph holds the same weights, except that the export folded every BatchNorm into the convolution before it:
the graph's weight is W' = W * g / s and its bias b' = beta + (b - mu) * g / s, and g, beta, mu and s cannot be
told apart again. Every split with the same W' and b' computes the shipped function in eval mode. This one
also keeps training mode close to it, where a norm divides by each batch's own statistics: the convolution
keeps W', the norm's running mean and variance are those of W'x over real training images, and its affine
part multiplies that spread back and adds b' (the mean back too). A batch with those statistics then gives
exactly the shipped output, and other training batches nearly; a split with identity norms would instead
begin by renormalising every layer, far from the shipped net.

Only what the graph computes comes back: the training-only semantic head and backbone stages after the
deepest one the FPN reads keep their fresh initialisation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import torch
from google.protobuf.message import DecodeError
from torch import nn

from pipeline.errors import EdgeSegError
from pipeline.modelcard import YOLACT_OUTPUTS, LoadedCard, load_card
from pipeline.nets.export import check_input, max_difference, tolerance
from pipeline.nets.yolact import Yolact, YolactConfig
from pipeline.runtime import onnxruntime as ort_runtime


@dataclass(frozen=True)
class _Conv:
    name: str  # the module's name in the net, for errors
    conv: nn.Conv2d
    norm: nn.BatchNorm2d | None  # the norm that reads this convolution's output, folded into it by the export


def onnx_checkpoint(source: Path, net_cfg: YolactConfig, images: Iterable[torch.Tensor] = ()) -> dict:
    """The checkpoint of the YOLACT file whose model card is ``source`` (the ``.onnx`` file stands for the card
    beside it), as the dense form of ``net_cfg`` at the card's input size with as many of its aspect ratios as
    the file predicts: ``model``, ``net``, ``input``, ``epoch`` None (no run's) and ``norm_images``.

    ``images`` (preprocessed batches, drawn only once the file has passed every check) set the norms'
    statistics; without them the norms are exact in eval mode only, which is all a teacher needs. Raises
    :class:`EdgeSegError` (one line) for a card of another kind of model, a file ONNX Runtime cannot open or
    that disagrees with its card, a graph of another net, or weights that do not reproduce the file."""
    loaded = load_card(source.with_suffix(".yaml") if source.suffix == ".onnx" else source)
    card = loaded.card
    if card.output.kind != "yolact":
        raise EdgeSegError(f"{loaded.path}: a {card.task} model ({card.output.kind} output), not a YOLACT one")
    session = ort_runtime.load(loaded, threads=1)  # one-line errors for a file that does not open or fit the card
    path = loaded.onnx_path
    try:
        graph = onnx.load(str(path))
    except (DecodeError, OSError, ValueError) as e:
        raise EdgeSegError(f"{path}: cannot be read as ONNX: {str(e).splitlines()[0]}") from None
    stored = _stored(graph)
    if YOLACT_OUTPUTS[4] not in stored:
        raise EdgeSegError(f"{path}: output '{YOLACT_OUTPUTS[4]}' is not stored: not one of our YOLACT exports")
    net = Yolact(_file_config(net_cfg, loaded, onnx.numpy_helper.to_array(stored[YOLACT_OUTPUTS[4]])))
    norms = _load_convolutions(net, graph, stored, path)
    used = _set_statistics(net, norms, images)
    x = check_input(card.input, batch=1)
    with torch.no_grad():
        ours = dict(zip(YOLACT_OUTPUTS, (t.numpy() for t in net.eval()(torch.from_numpy(x)))))
    got = session.run(x)
    for name, expected in ours.items():
        diff = max_difference(got[name], expected)
        if not diff <= tolerance(got[name]):  # also catches NaN
            raise EdgeSegError(f"{path}: the weights read back give output '{name}' {diff:.3g} away from ONNX "
                               f"Runtime's{' (NaN: check the images)' if np.isnan(diff) else ''}")
    return {"model": net.state_dict(), "net": asdict(net.cfg), "input": card.input.model_dump(), "epoch": None,
            "norm_images": used}


def _stored(graph: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    """Every tensor the file stores, by the names the graph reads it under: its initialisers, its Constant
    nodes' values (our exports append the priors as one) and Identity copies of either (the exporter stores
    equal tensors, such as the biases of untrained norms, once)."""
    stored = {t.name: t for t in graph.graph.initializer}
    for node in graph.graph.node:  # in graph order: a copy comes after what it copies
        if node.op_type == "Constant":
            stored.update({node.output[0]: a.t for a in node.attribute if a.name == "value"})
        elif node.op_type == "Identity" and node.input[0] in stored:
            stored[node.output[0]] = stored[node.input[0]]
    return stored


def _file_config(net_cfg: YolactConfig, loaded: LoadedCard, priors: np.ndarray) -> YolactConfig:
    """``net_cfg`` as the file was exported: dense, at the card's input size (anchors stay in input pixels),
    with the first aspect ratios as many as its priors show (an earlier stage may have had fewer), and its
    priors, compared here, the file's: the checkpoint's anchors are in the order its head predicts them."""
    w, h = loaded.card.input.width, loaded.card.input.height
    cfg = replace(net_cfg, separable=False, input_size=(w, h), anchor_norm=(
        net_cfg.anchor_norm[0] * w / net_cfg.input_size[0], net_cfg.anchor_norm[1] * h / net_cfg.input_size[1]))
    cells = len(Yolact(cfg).priors) // cfg.anchors_per_cell  # cheap: the priors are computed, not learnt
    ratios = len(priors) // cells if len(priors) % cells == 0 else 0
    if 0 < ratios < cfg.anchors_per_cell:
        cfg = replace(cfg, aspect_ratios=cfg.aspect_ratios[:ratios])
    ours = Yolact(cfg).priors.numpy()
    if priors.shape != ours.shape or not np.allclose(priors, ours, atol=1e-5):
        raise EdgeSegError(f"{loaded.onnx_path}: its priors {priors.shape} are not the ones the config's net "
                           f"makes at {w}x{h} {ours.shape} (other anchors)")
    return cfg


def _forward_convolutions(net: Yolact) -> list[_Conv]:
    """``net``'s convolutions in the order the eval-mode forward pass first calls them, the order the exporter
    wrote the graph in (a shared head's, once), each with the norm that reads its output, if any."""
    names = {m: n for n, m in net.named_modules()}
    order: list[nn.Conv2d] = []
    made: dict[int, tuple[torch.Tensor, nn.Conv2d]] = {}  # the tensor kept alive so its id stays its own
    norm_of: dict[nn.Conv2d, nn.BatchNorm2d] = {}

    def on_conv(m: nn.Conv2d, _: tuple, out: torch.Tensor) -> None:
        if m not in order:
            order.append(m)
        made[id(out)] = (out, m)

    def on_norm(m: nn.BatchNorm2d, inputs: tuple[torch.Tensor], _: torch.Tensor) -> None:
        if id(inputs[0]) in made:
            norm_of[made[id(inputs[0])][1]] = m

    hooks = [m.register_forward_hook(on_conv if isinstance(m, nn.Conv2d) else on_norm) for m in net.modules()
             if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, 3, net.cfg.input_size[1], net.cfg.input_size[0]))
    finally:
        for h in hooks:
            h.remove()
    return [_Conv(names[c], c, norm_of.get(c)) for c in order]


@torch.no_grad()
def _load_convolutions(net: Yolact, graph: onnx.ModelProto, stored: dict[str, onnx.TensorProto],
                       path: Path) -> dict[nn.BatchNorm2d, torch.Tensor]:
    """Copy the graph's convolutions into ``net`` in forward order; a norm after one becomes the identity plus
    the folded bias. Returns each such norm with that bias."""
    params = {p: n for n, p in net.named_parameters()}
    param_names = set(params.values())
    nodes, seen = [], set()
    for node in graph.graph.node:
        if node.op_type == "Conv" and node.input[1] not in seen:  # a shared head is called once per level
            seen.add(node.input[1])
            nodes.append(node)
    convs = _forward_convolutions(net)
    if len(nodes) != len(convs):
        raise EdgeSegError(f"{path}: {len(nodes)} convolutions, the config's net {net.cfg.name} computes "
                           f"{len(convs)}: a graph of another net")

    def tensor(name: str, what: str, c: _Conv) -> torch.Tensor:
        if name not in stored:
            raise EdgeSegError(f"{path}: the {what} of the convolution at {c.name} is not stored in the file")
        return torch.from_numpy(onnx.numpy_helper.to_array(stored[name]).copy())

    norms = {}
    for node, c in zip(nodes, convs):
        own = params[c.conv.weight]
        if node.input[1] in param_names and node.input[1] != own:  # unfolded ones keep names
            raise EdgeSegError(f"{path}: the graph computes {node.input[1]} where the config's net computes {own}")
        w = tensor(node.input[1], "weight", c)
        if w.shape != c.conv.weight.shape:
            raise EdgeSegError(f"{path}: the convolution at {c.name} has weights {tuple(w.shape)}, the config's "
                               f"net {net.cfg.name} {tuple(c.conv.weight.shape)}: a graph of another net")
        b = tensor(node.input[2], "bias", c) if len(node.input) > 2 and node.input[2] else torch.zeros(w.shape[0])
        c.conv.weight.copy_(w)
        if c.norm is not None:
            if c.conv.bias is not None:
                c.conv.bias.zero_()  # the folded bias holds it
            c.norm.weight.fill_(1.0)
            c.norm.bias.copy_(b)
            c.norm.running_mean.zero_()
            c.norm.running_var.fill_(1.0 - c.norm.eps)  # divides by exactly 1
            norms[c.norm] = b
        elif c.conv.bias is not None:
            c.conv.bias.copy_(b)
        elif b.abs().max() > 0:
            raise EdgeSegError(f"{path}: the convolution at {c.name} has a bias the config's net has no place for")
    return norms


@torch.no_grad()
def _set_statistics(net: Yolact, norms: dict[nn.BatchNorm2d, torch.Tensor], images: Iterable[torch.Tensor]) -> int:
    """Give each norm the mean and (biased, as training mode divides by) variance of its input over
    ``images``, and the affine part that maps them back onto the folded output. Returns how many images."""
    sums: dict[nn.BatchNorm2d, list] = {m: [0.0, 0.0, 0] for m in norms}

    def collect(m: nn.BatchNorm2d, inputs: tuple[torch.Tensor], _: torch.Tensor) -> None:
        x = inputs[0].double().transpose(0, 1).flatten(1)
        s = sums[m]
        s[0], s[1], s[2] = s[0] + x.sum(1), s[1] + (x * x).sum(1), s[2] + x.shape[1]

    hooks = [m.register_forward_hook(collect) for m in norms]
    used = 0
    net.eval()  # every layer sees the file's own activations
    try:
        for x in images:
            net(x)
            used += len(x)
    finally:
        for h in hooks:
            h.remove()
    if used:
        for m, b in norms.items():
            total, square, n = sums[m]
            mean = total / n
            var = (square / n - mean * mean).clamp_min(0.0)
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.weight.copy_((var + m.eps).sqrt())
            m.bias.copy_(b + mean)
    return used
