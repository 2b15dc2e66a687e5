"""ONNX Runtime: the default runtime (CPU everywhere; CUDA / TensorRT where installed and asked for).

Thread settings follow what measured fastest for our small convolutional nets on few cores (see
shared ANCHORS.md): one intra-op pool with one thread per physical core (hyper-threads share the
same vector units and only add contention), sequential execution (these graphs are a chain with
little branch parallelism, so an inter-op pool only competes with the intra-op one) and every
graph optimisation (conv + batch norm + activation fusion).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from pipeline.errors import EdgeSegError
from pipeline.modelcard import LoadedCard

_SHORT_PROVIDER_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}

# What ORT raises for a file that is not a usable model (it has no common base class but Exception).
_LOAD_ERRORS = (ort_errors.Fail, ort_errors.InvalidArgument, ort_errors.InvalidGraph, ort_errors.InvalidProtobuf,
                ort_errors.NoSuchFile, ort_errors.NotImplemented, ort_errors.RuntimeException)


def physical_cores() -> int:
    """Physical cores this process may use: distinct (package, core) pairs in /proc/cpuinfo, capped by
    the CPU affinity mask; the logical count where /proc/cpuinfo is unavailable (non-Linux)."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return allowed
    cores, package = set(), "0"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            package = value.strip()
        elif key == "core id":
            cores.add((package, value.strip()))
    return max(1, min(len(cores) or allowed, allowed))


def resolve_providers(requested: Sequence[str] | None) -> list[str]:
    """Requested providers (short names cpu/cuda/tensorrt or ORT names) that this ORT build has, in the
    order asked, with the CPU provider last as the fallback ORT needs for unsupported nodes."""
    if not requested:
        return ["CPUExecutionProvider"]
    available = set(ort.get_available_providers())
    chosen = []
    for name in requested:
        full = _SHORT_PROVIDER_NAMES.get(name.lower(), name)
        if full not in ort.get_all_providers():
            raise EdgeSegError(f"unknown ONNX Runtime provider '{name}' (known: {', '.join(_SHORT_PROVIDER_NAMES)})")
        if full in available and full not in chosen:
            chosen.append(full)
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


class OrtSession:
    """A :class:`pipeline.runtime.ModelSession` on ONNX Runtime."""

    def __init__(self, session: ort.InferenceSession, threads: int):
        self._session = session
        inp = session.get_inputs()[0]
        self.input_name: str = inp.name
        self.input_shape: tuple[int | str | None, ...] = tuple(inp.shape)
        self.output_names: tuple[str, ...] = tuple(o.name for o in session.get_outputs())
        self.runtime = f"onnxruntime {ort.__version__}"
        self.provider: str = session.get_providers()[0]
        self.threads = threads
        # A graph exported with a fixed batch of 1 is fed one image at a time.
        self._fixed_batch = self.input_shape[0] if isinstance(self.input_shape[0], int) else None

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if self._fixed_batch is None or self._fixed_batch == len(batch):
            values = self._session.run(None, {self.input_name: batch})
        else:
            parts = [self._session.run(None, {self.input_name: batch[i:i + 1]}) for i in range(len(batch))]
            values = [np.concatenate(outs) for outs in zip(*parts)]
        return dict(zip(self.output_names, values))


def session_options(threads: int, spin: bool = True) -> ort.SessionOptions:
    """The settings every ORT session of ours uses (see the module docstring); shared with the latency
    benchmark so model cards report the speed users get. ``threads`` 0 means one per physical core.

    ``spin`` False stops idle intra-op threads from busy-waiting for the next run: in a streaming
    pipeline the model shares the cores with capture, drawing and encoding threads, which spinning
    workers would starve."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or physical_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: ORT's warnings about unused initialisers are noise here
    return options


def load(loaded_card: LoadedCard, threads: int = 0, providers: Sequence[str] | None = None,
         spin: bool = True) -> OrtSession:
    """Open the card's ONNX file. ``threads`` 0 means one per physical core. ``providers`` lists the
    execution providers wanted, best first; those this ORT build lacks are skipped (``session.provider``
    says which one runs). ``spin``: see :func:`session_options`."""
    path = loaded_card.onnx_path
    options = session_options(threads, spin)
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=resolve_providers(providers))
    except _LOAD_ERRORS as e:
        reason = str(e).split(" : ")[-1].replace("\n", " ")
        reason = re.sub(r"^Load model from .*? failed:\s*", "", reason).strip()
        raise EdgeSegError(f"{path}: not a loadable ONNX model: {reason}") from None
    result = OrtSession(session, options.intra_op_num_threads)
    _check_against_card(result, loaded_card)
    return result


def _check_against_card(session: OrtSession, loaded_card: LoadedCard) -> None:
    """The card drives preprocessing and decoding, so a card that disagrees with its network would give
    silently wrong masks: catch it at load time, naming the card key."""
    card, where = loaded_card.card, loaded_card.path
    if session.input_name != card.input.name:
        raise EdgeSegError(f"{where}: key 'input.name': '{card.input.name}' but {loaded_card.onnx_path.name} "
                           f"takes '{session.input_name}'")
    missing = [name for name in card.output.names if name not in session.output_names]
    if missing:
        key = "output.kind" if card.output.kind == "yolact" else "output.name"  # yolact: a fixed set of names
        raise EdgeSegError(f"{where}: key '{key}': '{missing[0]}' is not an output of "
                           f"{loaded_card.onnx_path.name} (outputs: {', '.join(session.output_names)})")
    shape = session.input_shape
    if len(shape) != 4:
        raise EdgeSegError(f"{where}: {loaded_card.onnx_path.name} takes a rank-{len(shape)} input, not NCHW")
    for key, axis, want in (("input.height", 2, card.input.height), ("input.width", 3, card.input.width)):
        if isinstance(shape[axis], int) and shape[axis] != want:
            raise EdgeSegError(f"{where}: key '{key}': {want} but {loaded_card.onnx_path.name} takes "
                               f"{'x'.join(map(str, shape))}")
