"""Start a YOLACT from a checkpoint of the same net with fewer anchor aspect ratios, or with dense convolutions
where the new net factorises them (``YolactConfig.separable``).

Adding an aspect ratio to a trained net changes only the last three convolutions of the prediction head
(box, class and coefficient outputs are laid out anchor by anchor). Every other weight carries over, and
each new anchor's outputs start as a copy of the old anchor closest to it in aspect ratio. The net then
begins from a detector that already works, which matters when training runs on two CPU cores.

A dense 3x3 convolution has no exact depthwise-separable equivalent, so factorised layers keep their own
initialisation here (``WarmStart.fresh_layers`` names them; pipeline/train/factorise.py can fit them to the
dense ones before training); the backbone, the FPN laterals and downsampling, the last ProtoNet layer and
the semantic head carry over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pipeline.errors import EdgeSegError
from pipeline.nets.yolact import Yolact

# the head convolutions whose output channels are (anchor, value) pairs
PER_ANCHOR = ("bbox_layer", "conf_layer", "mask_layer")


def anchor_sources(old: tuple[float, ...], new: tuple[float, ...]) -> list[int]:
    """For each of ``new``'s aspect ratios, the index of the old one it starts from. ``old`` must be a
    prefix of ``new``: the old anchors keep their places and their outputs."""
    if tuple(new[:len(old)]) != tuple(old):
        raise EdgeSegError(f"aspect ratios {list(new)} do not extend the checkpoint's {list(old)} (they must "
                           "start with them, in order)")
    return [i if i < len(old) else min(range(len(old)), key=lambda j: abs(math.log(r / old[j])))
            for i, r in enumerate(new)]


@dataclass(frozen=True)
class WarmStart:
    new_anchors: int  # aspect ratios initialised by copy
    fresh_layers: tuple[str, ...]  # factorised convolutions the checkpoint holds dense (own initialisation)


def _factorised(key: str, state: dict[str, torch.Tensor]) -> str | None:
    """The layer name when ``key`` is a part of a factorised convolution (``L.0.weight``, ``L.1.weight``,
    ``L.1.bias``) whose dense 3x3 form ``L.weight`` the checkpoint holds; else None."""
    layer, part, kind = (key.rsplit(".", 2) + ["", ""])[:3]
    if (part, kind) not in (("0", "weight"), ("1", "weight"), ("1", "bias")):
        return None
    dense = state.get(f"{layer}.weight")
    return layer if dense is not None and dense.dim() == 4 and tuple(dense.shape[2:]) == (3, 3) else None


def warm_start(model: Yolact, state: dict[str, torch.Tensor], old_aspect_ratios: tuple[float, ...]) -> WarmStart:
    """Load ``state`` into ``model``, widening the per-anchor head layers and leaving factorised layers whose
    checkpoint form is dense at their initialisation."""
    sources = anchor_sources(tuple(old_aspect_ratios), model.cfg.aspect_ratios)
    old_a = len(old_aspect_ratios)
    target = model.state_dict()
    fresh = {key: _factorised(key, state) for key in set(target) - set(state)}
    missing = sorted(key for key, layer in fresh.items() if layer is None)
    if missing:
        raise EdgeSegError(f"the checkpoint lacks {len(missing)} of the net's weights (first: {missing[0]})")
    merged = {}
    for key, value in target.items():
        src = state.get(key)
        if src is None:  # a factorised layer: the net's own initialisation
            merged[key] = value
        elif src.shape == value.shape:
            merged[key] = src
        elif key.split(".")[-2] in PER_ANCHOR and src.shape[0] % old_a == 0:
            per = src.reshape(old_a, src.shape[0] // old_a, *src.shape[1:])  # (anchor, value, ...)
            merged[key] = per[sources].reshape(value.shape)
        else:
            raise EdgeSegError(f"checkpoint weight {key} has shape {tuple(src.shape)}, the net needs {tuple(value.shape)}")
    model.load_state_dict(merged)
    return WarmStart(new_anchors=len(sources) - old_a, fresh_layers=tuple(sorted(set(fresh.values()))))
