"""Decoders: a network's raw outputs -> pipeline.types results at the frame's size.

Model-specific knowledge (output layout, extra channels, how to scale back to the frame) lives
here; decoders see numpy arrays only and know nothing of the runtime that produced them.
"""

from collections.abc import Callable, Sequence

import numpy as np

from pipeline.decoders.semantic import SemanticDecoder
from pipeline.decoders.yolact import YolactDecoder

# What every decoder is: the named outputs of a batch, the frames' (width, height) -> one SemanticMap or
# Instances per frame
Decoder = Callable[[dict[str, np.ndarray], Sequence[tuple[int, int]]], list]

__all__ = ["Decoder", "SemanticDecoder", "YolactDecoder"]
