"""Recipe for official ESPNetv2 segmentation checkpoints (sacmehta/EdgeNets,
`model/segmentation/model_zoo/espnetv2/espnetv2_s_<s>_<dataset>_<W>x<H>.pth`).

Width scale, class count and decoder width are read from the tensors; the input size the file was
trained at is read from its name (EdgeNets names every checkpoint that way).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from pipeline.importers.checkpoint import load_strict
from pipeline.importers.recipe import BuiltModel
from pipeline.modelcard import InputSpec
from pipeline.nets.espnetv2 import INPUT_MULTIPLE, SCALE_CHANNELS, ESPNetv2Segmentation

NAME = "espnetv2"
REPOSITORY = "https://github.com/sacmehta/EdgeNets"
SIZE_MULTIPLE = INPUT_MULTIPLE

# EdgeNets feeds RGB / 255 normalised with the ImageNet statistics (transforms/classification).
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
_SIZE_IN_NAME = re.compile(r"(\d+)x(\d+)")
_FALLBACK_SIZE = {"cityscapes": (1024, 512), "camvid": (480, 360)}

# Fallbacks used only when a key is absent: the strict load then reports the file as not ESPNetv2.
_DEFAULT_SCALE, _DEFAULT_CLASSES, _DEFAULT_DECODER_BASE = 2.0, 20, 16
_SCALE_BY_LEVEL2 = {channels[1]: s for s, channels in SCALE_CHANNELS.items()}


def _channels(state: dict[str, torch.Tensor], key: str) -> int | None:
    t = state.get(key)
    return int(t.shape[0]) if t is not None and t.dim() >= 1 else None


def build(state: dict[str, torch.Tensor], checkpoint: Path) -> BuiltModel:
    level2 = _channels(state, "base_net.level2_0.act.weight")
    scale = _SCALE_BY_LEVEL2.get(level2, _DEFAULT_SCALE) if level2 is not None else _DEFAULT_SCALE
    classes = _channels(state, "bu_dec_l4.merge_layer.3.weight") or _DEFAULT_CLASSES
    last_decoder = _channels(state, "bu_br_l4.0.weight")  # 2 x decoder base width
    decoder_base = last_decoder // 2 if last_decoder else _DEFAULT_DECODER_BASE
    model = ESPNetv2Segmentation(scale, classes, decoder_base=decoder_base)
    load_strict(model, state, checkpoint, "ESPNetv2")
    return BuiltModel(model.eval(), f"ESPNetv2 (s={scale})", classes)


def input_spec(dataset: str, width: int, height: int) -> InputSpec:
    return InputSpec(width=width, height=height, color_order="RGB",
                     mean=tuple(round(m * 255, 4) for m in IMAGENET_MEAN_RGB), std=tuple(round(s * 255, 4) for s in IMAGENET_STD_RGB))


def default_size(dataset: str, checkpoint: Path) -> tuple[int, int]:
    """The WxH in the file name, else the dataset's usual size rounded up to a multiple of 16."""
    found = _SIZE_IN_NAME.search(checkpoint.name)
    w, h = (int(found.group(1)), int(found.group(2))) if found else _FALLBACK_SIZE[dataset]
    return math.ceil(w / SIZE_MULTIPLE) * SIZE_MULTIPLE, math.ceil(h / SIZE_MULTIPLE) * SIZE_MULTIPLE
