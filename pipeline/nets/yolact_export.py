"""Exporting a :class:`~pipeline.nets.yolact.Yolact` to the ONNX graph the YOLACT decoder reads.

Shared by `edgeseg import yolact` and our own training code. Five outputs with fixed names
(:data:`pipeline.modelcard.YOLACT_OUTPUTS`), a dynamic batch axis on the input and on the four per-image
outputs, the priors as a Constant node appended after the export (a tracer refuses outputs that do not
depend on the input). Uses the TorchScript exporter: for the ResNet-101 net at 550x550 it takes seconds
where the dynamo exporter takes minutes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
import torch

from pipeline.modelcard import YOLACT_OUTPUTS, InputSpec
from pipeline.nets.export import ExportMismatchError, check_input, max_difference, quiet_exporter, tolerance
from pipeline.nets.yolact import Yolact

_PER_IMAGE = YOLACT_OUTPUTS[:4]  # every output but the priors has a batch axis


@dataclass(frozen=True)
class YolactExportResult:
    path: Path
    max_abs_diff: dict[str, float]  # ONNX Runtime vs torch on the check input, per output
    num_priors: int


def export_yolact_onnx(model: Yolact, path: str | os.PathLike, input_spec: InputSpec, opset: int = 17) -> YolactExportResult:
    """Export ``model`` (put in eval mode) with its weights embedded, then run the file in ONNX Runtime on a
    random batch of 2 normalised as ``input_spec`` says and compare every output with torch.

    Raises :class:`ExportMismatchError` when an output differs by more than ``EXPORT_RTOL`` times its
    largest magnitude (at least 1), or has another shape.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    x = torch.from_numpy(check_input(input_spec, batch=2))
    dynamic = {input_spec.name: {0: "batch"}, **{name: {0: "batch"} for name in _PER_IMAGE}}
    with torch.no_grad(), quiet_exporter():
        expected = [t.numpy() for t in model(x)] + [model.priors.numpy()]
        torch.onnx.export(model, (x,), str(path), input_names=[input_spec.name], output_names=list(_PER_IMAGE),
                          dynamic_axes=dynamic, opset_version=opset, dynamo=False)
    _finish_graph(path, expected)
    onnx.checker.check_model(str(path), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(list(YOLACT_OUTPUTS), {input_spec.name: x.numpy()})
    diffs = {}
    for name, g, e in zip(YOLACT_OUTPUTS, got, expected):
        if g.shape != e.shape:
            raise ExportMismatchError(f"{path}: ONNX output '{name}' has shape {g.shape}, torch {e.shape}")
        diffs[name] = max_difference(g, e)
        limit = tolerance(e)
        if not diffs[name] <= limit:  # also catches NaN
            raise ExportMismatchError(f"{path}: ONNX Runtime output '{name}' differs from torch by "
                                      f"{diffs[name]:.3g} (limit {limit:.3g})")
    return YolactExportResult(path=path, max_abs_diff=diffs, num_priors=int(model.priors.shape[0]))


def _finish_graph(path: Path, expected: list[np.ndarray]) -> None:
    """Append the priors as a Constant output and declare every output's shape exactly ("batch", then
    the static sizes): the tracer's inferred output shapes are symbolic, and for proto wrongly reuse the
    batch symbol for the height."""
    graph_file = onnx.load(str(path))
    graph = graph_file.graph
    priors = expected[-1]
    graph.node.append(onnx.helper.make_node("Constant", [], [YOLACT_OUTPUTS[4]], name="priors_constant",
                                            value=onnx.numpy_helper.from_array(priors, YOLACT_OUTPUTS[4])))
    del graph.output[:]
    for name, value in zip(YOLACT_OUTPUTS, expected):
        shape = ["batch", *value.shape[1:]] if name in _PER_IMAGE else list(value.shape)
        graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape))
    onnx.save(graph_file, str(path))
