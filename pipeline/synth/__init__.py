"""Procedural road scenes with exact ground truth: demo source, training data, benchmark.

``SynthWorld(seed, size, fps).render(i)`` gives a :class:`SynthFrame`: a BGR frame plus CamVid
semantic labels, per-pixel track ids and the visible objects. See :mod:`pipeline.synth.world`.
"""

from pipeline.synth.frame import SynthFrame, SynthObject
from pipeline.synth.world import SynthWorld

__all__ = ["SynthFrame", "SynthObject", "SynthWorld"]
