"""The pipeline's tracking stage: persistent ids on the instance model's detections, and objects on the
frames the instance model skips.

With ``models.instance.every: N`` the detector runs on every Nth frame only (DeepStream's ``interval``, a
Jetson habit: a 3x cheaper detector for a small loss). On the frames in between, the tracker predicts
where every confirmed object has moved, and the stage turns those predictions into :class:`Instances`:
the Kalman box, and the object's last mask moved with it (shifted by how far its box centre moved; a few
frames of motion are mostly translation). Downstream stages see instances on every frame either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from pipeline.tracking import Tracker, TrackerConfig, TrackView
from pipeline.types import FrameResult, Instances


class TrackStep:
    """One per source: a source's objects are tracked in that source's time only."""

    def __init__(self, config: TrackerConfig, class_names: Sequence[str]):
        self.class_names = tuple(class_names)
        self.tracker = Tracker(config, class_names=self.class_names)

    def __call__(self, result: FrameResult) -> None:
        """Ids for ``result.instances`` when the detector ran on this frame (track id -1: not a confirmed
        track yet); else predicted instances."""
        pts = result.frame.pts
        instances = result.instances
        if instances is None:
            views = self.tracker.predict(pts)
            width, height = result.frame.size
            result.instances = predicted_instances(views, height, width, self.class_names)
            return
        ids = self.tracker.update(instances.boxes, instances.scores, instances.classes, pts, masks=instances.masks)
        result.instances = replace(instances, track_ids=ids)


def predicted_instances(views: Sequence[TrackView], height: int, width: int,
                        class_names: tuple[str, ...]) -> Instances:
    """Instances from the tracker's predictions: Kalman boxes, each last mask translated with its box."""
    if not views:
        return replace(Instances.empty(height, width, class_names), track_ids=np.zeros(0, np.int64))
    boxes = np.stack([v.box for v in views]).astype(np.float32)
    masks = np.zeros((len(views), height, width), bool)
    for i, view in enumerate(views):
        if view.mask is None or view.mask_box is None:
            continue
        x0, y0, x1, y1 = view.mask_box
        # where the crop's top-left corner lands: moved by the box centre's displacement
        dx = int(round((boxes[i, 0] + boxes[i, 2] - x0 - x1) / 2))
        dy = int(round((boxes[i, 1] + boxes[i, 3] - y0 - y1) / 2))
        _paste(masks[i], view.mask, x0 + dx, y0 + dy)
    return Instances(
        classes=np.array([v.class_id for v in views], np.int32),
        scores=np.array([v.score for v in views], np.float32),
        boxes=boxes,
        masks=masks,
        class_names=class_names,
        track_ids=np.array([v.id for v in views], np.int64),
    )


def _paste(target: np.ndarray, crop: np.ndarray, left: int, top: int) -> None:
    """``target[top:, left:] = crop`` clipped to the target: a moved mask may leave the frame."""
    h, w = target.shape
    ch, cw = crop.shape
    tx0, ty0 = max(left, 0), max(top, 0)
    tx1, ty1 = min(left + cw, w), min(top + ch, h)
    if tx1 > tx0 and ty1 > ty0:
        target[ty0:ty1, tx0:tx1] = crop[ty0 - top:ty1 - top, tx0 - left:tx1 - left]
