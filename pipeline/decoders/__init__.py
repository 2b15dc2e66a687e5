"""Decoders: a network's raw outputs -> pipeline.types results at the frame's size.

Model-specific knowledge (output layout, extra channels, how to scale back to the frame) lives
here; decoders see numpy arrays only and know nothing of the runtime that produced them.
"""

from pipeline.decoders.semantic import SemanticDecoder
from pipeline.decoders.yolact import YolactDecoder

__all__ = ["SemanticDecoder", "YolactDecoder"]
