"""Model runtimes: run a model card's network on a preprocessed batch.

A runtime turns an NCHW float32 batch into the network's raw outputs by name and nothing more;
preprocessing (:mod:`pipeline.preprocess`) and decoding (:mod:`pipeline.decoders`) stay outside, so
that a new runtime (TensorRT, say) only has to implement :class:`ModelSession` and a ``load``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from pipeline.modelcard import LoadedCard


class ModelSession(Protocol):
    """A loaded network, ready to run. Attributes describe what actually runs, for reports."""

    input_name: str
    output_names: tuple[str, ...]
    runtime: str  # e.g. "onnxruntime 1.31.1"
    provider: str  # the device/backend that runs the graph, e.g. "CPUExecutionProvider"
    threads: int  # intra-op threads (0 where the backend does not use CPU threads)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """(N, 3, H, W) float32 -> every output of the network by name, batch dimension N first."""
        ...


def load(loaded_card: LoadedCard, threads: int = 0, providers: Sequence[str] | None = None,
         spin: bool = True) -> ModelSession:
    """The card's network on the default runtime (ONNX Runtime); see
    :func:`pipeline.runtime.onnxruntime.load` for ``threads``, ``providers`` and ``spin``."""
    from pipeline.runtime import onnxruntime  # here, so devices with another runtime need no ORT

    return onnxruntime.load(loaded_card, threads=threads, providers=providers, spin=spin)
