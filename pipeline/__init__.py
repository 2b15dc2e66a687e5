"""EdgeSeg: streaming video segmentation for edge devices.

Data flows one way: source -> preprocess -> runtime -> decode -> track -> analytics -> sinks.
Stages exchange the dataclasses in :mod:`pipeline.types`.
"""

__version__ = "0.1.0"
