"""Turning a trained torch module into the artefacts a model card describes: an ONNX file, its
parameter count, its GFLOPs and its measured CPU latency.

Shared by `edgeseg import` and by our own training code, so that every card in engines/ is produced
and measured the same way. torch is imported here (export needs it); onnx and onnxruntime are used
for checking and measuring.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import platform
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import shape_inference

from pipeline.modelcard import REPO_ENGINES, InputSpec, Latency
from pipeline.runtime.onnxruntime import session_options

# Largest ORT-vs-torch difference accepted on the check input, relative to the output's magnitude.
# fp32 kernels differ in summation order; real export bugs (wrong op, wrong layout) give differences
# of the order of the outputs themselves.
EXPORT_RTOL = 1e-3


def max_difference(got: np.ndarray, expected: np.ndarray) -> float:
    """The largest absolute difference between two outputs: infinite for another shape, NaN where either
    holds one (no tolerance passes either)."""
    return float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")


def tolerance(expected: np.ndarray) -> float:
    """The largest difference a check of an ONNX file against torch accepts on an output: ``EXPORT_RTOL``
    times the output's largest magnitude, at least 1 (float32 sums in another order differ that much)."""
    return EXPORT_RTOL * max(1.0, float(np.abs(expected).max()))


class ExportMismatchError(RuntimeError):
    """The exported ONNX graph does not compute what the torch module computes."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    max_abs_diff: float  # ONNX Runtime vs torch on the check input
    output_shape: tuple[int, ...]  # of the check input, batch 2


DEFAULT_CAMVID = REPO_ENGINES.parent.parent / "shared" / "data" / "camvid"  # the shared data beside the repo


def export_argument_parser(description: str, camvid_use: str) -> argparse.ArgumentParser:
    """The arguments every tools/export_*.py takes: the training config, --checkpoint, --out, --camvid (whose
    ``camvid_use`` the help names), --limit and --latency-runs."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("config", help="the training config the checkpoint was trained with")
    ap.add_argument("--checkpoint", help="default runs/<name>/best.pt")
    ap.add_argument("--out", default=str(REPO_ENGINES), help="directory for the ONNX file and card (default engines/)")
    ap.add_argument("--camvid", default=str(DEFAULT_CAMVID),
                    help=f"CamVid root: {camvid_use}")
    ap.add_argument("--limit", type=int, help="use only the first N images of each split (quick checks, tests)")
    ap.add_argument("--latency-runs", type=int, default=50, help="timed model calls per thread count (default 50)")
    return ap


def count_params(model: torch.nn.Module) -> int:
    """Learnable parameters (buffers such as batch-norm statistics are not counted)."""
    return sum(p.numel() for p in model.parameters())


def check_input(input_spec: InputSpec, batch: int, seed: int = 0) -> np.ndarray:
    """Random pixels normalised as the card says, so the check runs at the value scale the model
    was trained for (ESPNet's inputs are ~100x smaller than ImageNet-normalised ones)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (batch, 3, input_spec.height, input_spec.width)).astype(np.float32)
    mean = np.asarray(input_spec.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(input_spec.std, np.float32).reshape(1, 3, 1, 1)
    return (pixels - mean) / std


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence the exporter's progress prints, logging and deprecation warnings: they are addressed
    to torch developers, and a failed export still raises with its own message."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_onnx(model: torch.nn.Module, path: str | os.PathLike, input_spec: InputSpec,
                output_name: str = "logits", opset: int = 17) -> ExportResult:
    """Export ``model`` (NCHW float32 in, one tensor out) to a single self-contained ONNX file with a
    dynamic batch axis and fixed spatial size, then run it in ONNX Runtime on a random batch of 2
    (which also exercises the dynamic axis) and compare with torch.

    Raises :class:`ExportMismatchError` when the largest difference exceeds ``EXPORT_RTOL`` times
    the output's largest magnitude (at least 1). Puts ``model`` in eval mode. torch's exporter
    builds opset 18 and converts down when a lower ``opset`` is asked for; the check also covers
    that conversion.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    x = torch.from_numpy(check_input(input_spec, batch=2))
    with torch.no_grad(), quiet_exporter():
        expected = model(x).numpy()
        # The batch example must not be 1: torch.export would specialise a size-1 dimension.
        torch.onnx.export(
            model, (x,), str(path), input_names=[input_spec.name], output_names=[output_name],
            opset_version=opset, dynamo=True, external_data=False,
            dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False,
        )
    onnx.checker.check_model(str(path), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([output_name], {input_spec.name: x.numpy()})[0]
    if got.shape != expected.shape:
        raise ExportMismatchError(f"{path}: ONNX output shape {got.shape} != torch {expected.shape}")
    diff = float(np.abs(got - expected).max())
    limit = tolerance(expected)
    if not diff <= limit:  # also catches NaN
        raise ExportMismatchError(f"{path}: ONNX Runtime differs from torch by {diff:.3g} (limit {limit:.3g})")
    return ExportResult(path=path, max_abs_diff=diff, output_shape=tuple(got.shape))


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Static shape of every tensor whose shape inference could resolve fully."""
    shapes: dict[str, list[int]] = {i.name: list(i.dims) for i in model.graph.initializer}
    for vi in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = [d.dim_value for d in dims]
    for node in model.graph.node:  # shape inference leaves Constant outputs out of value_info
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    shapes[node.output[0]] = list(attr.t.dims)
    return shapes


def _node_macs(node: onnx.NodeProto, shapes: dict[str, list[int]]) -> int:
    def shape(name: str) -> list[int]:
        if name not in shapes:
            raise ValueError(f"onnx_gflops: shape of '{name}' (input/output of {node.op_type} "
                             f"'{node.name}') is unknown after shape inference")
        return shapes[name]

    if node.op_type == "Conv":
        w = shape(node.input[1])  # Cout x Cin/groups x k...
        return int(np.prod(shape(node.output[0]))) * int(np.prod(w[1:]))
    if node.op_type == "ConvTranspose":
        w = shape(node.input[1])  # Cin x Cout/groups x k...: every input value meets Cout/g*k weights
        return int(np.prod(shape(node.input[0]))) * int(np.prod(w[1:]))
    if node.op_type == "Gemm":
        a = shape(node.input[0])
        trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
        k = a[0] if trans_a else a[1]
        return int(np.prod(shape(node.output[0]))) * k
    if node.op_type == "MatMul":
        a = shape(node.input[0])
        return int(np.prod(shape(node.output[0]))) * a[-1]
    return 0


def onnx_gflops(onnx_path: str | os.PathLike, input_shape: tuple[int, ...]) -> float:
    """GFLOPs of one forward pass at ``input_shape`` (e.g. (1, 3, 360, 480)), counted from the graph.

    Counts the multiply-adds (MACs) of Conv, ConvTranspose, Gemm and MatMul only, which dominate
    these nets; element-wise ops, pooling, resizing and activations are left out, as is usual for
    published segmentation FLOPs. Reported as GFLOPs = 2 * MACs / 1e9 (one multiply plus one add).
    """
    model = onnx.load(str(onnx_path), load_external_data=False)
    if len(model.graph.input) != 1:
        raise ValueError(f"onnx_gflops: {onnx_path} has {len(model.graph.input)} inputs, expected 1")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != len(input_shape):
        raise ValueError(f"onnx_gflops: {onnx_path} input has rank {len(dims)}, got shape {input_shape}")
    for d, v in zip(dims, input_shape):
        d.Clear()
        d.dim_value = int(v)
    del model.graph.value_info[:]  # re-infer everything from the concrete input
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    inferred = shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    shapes = _shapes(inferred)
    return 2 * sum(_node_macs(n, shapes) for n in inferred.graph.node) / 1e9


def machine_description() -> str:
    """CPU model name and logical core count, e.g. 'AMD EPYC 7B13, 2 cores' (for latency records)."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name}, {cores} cores"


def measure_latency(onnx_path: str | os.PathLike, input_spec: InputSpec, threads: int, runs: int = 50,
                    warmup: int = 10, command: str | None = None) -> Latency:
    """Model-call latency on CPU at batch 1: ONNX Runtime with all graph optimisations, sequential
    execution and ``threads`` intra-op threads; median and 90th percentile over ``runs`` calls after
    ``warmup`` calls. Pre- and post-processing are not included (they are the same for every model)."""
    if threads < 1 or runs < 1 or warmup < 0:
        raise ValueError(f"measure_latency: need threads >= 1, runs >= 1, warmup >= 0 "
                         f"(got {threads}, {runs}, {warmup})")
    session = ort.InferenceSession(str(onnx_path), session_options(threads), providers=["CPUExecutionProvider"])
    feed = {input_spec.name: check_input(input_spec, batch=1)}
    for _ in range(warmup):
        session.run(None, feed)
    times_ms = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        session.run(None, feed)
        times_ms[i] = (time.perf_counter() - t0) * 1e3
    return Latency(
        runtime=f"onnxruntime {ort.__version__}",
        provider="CPUExecutionProvider",
        threads=threads,
        input=f"1x3x{input_spec.height}x{input_spec.width}",
        median_ms=round(float(np.median(times_ms)), 2),
        p90_ms=round(float(np.percentile(times_ms, 90)), 2),
        machine=machine_description(),
        command=command,
    )
