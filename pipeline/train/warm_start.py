"""Start a YOLACT from a checkpoint of the same net with fewer anchor aspect ratios.

Adding an aspect ratio to a trained net changes only the last three convolutions of the prediction head
(box, class and coefficient outputs are laid out anchor by anchor). Every other weight carries over, and
each new anchor's outputs start as a copy of the old anchor closest to it in aspect ratio. The net then
begins from a detector that already works, which matters when training runs on two CPU cores.
"""

from __future__ import annotations

import math

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


def warm_start(model: Yolact, state: dict[str, torch.Tensor], old_aspect_ratios: tuple[float, ...]) -> int:
    """Load ``state`` into ``model``, widening the per-anchor head layers; returns how many new anchors
    were initialised by copy."""
    sources = anchor_sources(tuple(old_aspect_ratios), model.cfg.aspect_ratios)
    old_a = len(old_aspect_ratios)
    target = model.state_dict()
    missing = sorted(set(target) - set(state))
    if missing:
        raise EdgeSegError(f"the checkpoint lacks {len(missing)} of the net's weights (first: {missing[0]})")
    merged = {}
    for key, value in target.items():
        src = state[key]
        if src.shape == value.shape:
            merged[key] = src
        elif key.split(".")[-2] in PER_ANCHOR and src.shape[0] % old_a == 0:
            per = src.reshape(old_a, src.shape[0] // old_a, *src.shape[1:])  # (anchor, value, ...)
            merged[key] = per[sources].reshape(value.shape)
        else:
            raise EdgeSegError(f"checkpoint weight {key} has shape {tuple(src.shape)}, the net needs {tuple(value.shape)}")
    model.load_state_dict(merged)
    return len(sources) - old_a
