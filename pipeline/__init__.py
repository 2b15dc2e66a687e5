"""EdgeSeg: streaming video segmentation for edge devices.

Data flows one way: source -> preprocess -> runtime -> decode -> track -> analytics -> sinks.
Stages exchange the dataclasses in :mod:`pipeline.types`.
"""

import os

# numpy's BLAS would start one thread per core for the small matrix products of the decoders (YOLACT's
# mask assembly), fighting the model runtime's threads for the same cores: measured on 2 cores, a
# 100-detection decode took 108 ms with 2 BLAS threads beside a busy runtime and 15.6 ms with one. Set
# before numpy is first imported (pipeline is imported first by the CLI); a user's own setting wins.
# Only OpenBLAS (what numpy's wheels use): OMP_NUM_THREADS would also cap torch's training threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
