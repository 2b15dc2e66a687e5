"""What one rendered synthetic frame carries: the image and its exact ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.labels import CAMVID
from pipeline.types import Frame, Instances


@dataclass(frozen=True)
class SynthObject:
    """One traffic agent with at least one visible pixel in a frame.

    ``box`` is x1, y1, x2, y2 in pixel-edge coordinates around the VISIBLE mask: a mask whose
    pixels span columns 3..7 has x1 = 3, x2 = 8 (so x2 - x1 is the width in pixels, as in COCO).
    ``visible_fraction`` is visible pixels over the pixels the agent would cover inside the frame
    with nothing in front of it (occlusion only; truncation by the frame edge does not count)."""

    track_id: int
    label: int  # CamVid id: 8 Car, 9 Pedestrian, 10 Bicyclist
    box: np.ndarray  # float32 (4,)
    visible_fraction: float


@dataclass(frozen=True)
class SynthFrame:
    frame: Frame
    semantic: np.ndarray  # HxW uint8 CamVid ids
    instance_ids: np.ndarray  # HxW uint16, 0 = background, else track id
    objects: tuple[SynthObject, ...]  # sorted by track id

    def to_instances(self) -> Instances:
        """The ground truth as the pipeline's Instances: one mask per object, scores 1."""
        n = len(self.objects)
        ids = np.array([o.track_id for o in self.objects], np.int64)
        h, w = self.semantic.shape
        return Instances(
            classes=np.array([o.label for o in self.objects], np.int32),
            scores=np.ones(n, np.float32),
            boxes=np.stack([o.box for o in self.objects]).astype(np.float32) if n else np.zeros((0, 4), np.float32),
            masks=self.instance_ids[None] == ids[:, None, None].astype(np.uint16) if n else np.zeros((0, h, w), bool),
            class_names=CAMVID.classes,
            track_ids=ids,
        )
