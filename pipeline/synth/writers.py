"""Ground-truth writers for synthetic clips, one format each.

Class conventions (also written to meta.json by `edgeseg synth`):

- PNG label maps hold CamVid ids (0..10); instance PNGs hold track ids (0 = none), 16-bit.
- KITTI MOTS knows only cars (1) and pedestrians (2). Cyclists are written as class 2: the rider is
  a person, and KITTI MOTS evaluation has no separate rider class. ``obj_id = class * 1000 +
  track_id``, so track ids must stay below 1000 (about the first several minutes of a clip).
- MOTChallenge gt.txt uses the MOT17 classes: 1 pedestrian, 2 person on vehicle (our cyclists),
  3 car. Boxes are those of the visible mask, in 0-based pixel coordinates; frames are 1-based;
  ``visibility`` is the unoccluded fraction.
- COCO JSON categories: 1 car, 2 pedestrian, 3 bicyclist; segmentations are compressed RLE.

Every writer produces the same bytes for the same frames: fixed float formatting, no timestamps.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import EdgeSegError
from pipeline.io import rle
from pipeline.synth import classes as C
from pipeline.synth.frame import SynthFrame, SynthObject

MOTS_CLASS = {C.CAR: 1, C.PEDESTRIAN: 2, C.BICYCLIST: 2}
MOTS_MAX_TRACK = 999
MOT_CLASS = {C.PEDESTRIAN: 1, C.BICYCLIST: 2, C.CAR: 3}
COCO_CATEGORIES = ({"id": 1, "name": "car", "camvid_id": C.CAR},
                   {"id": 2, "name": "pedestrian", "camvid_id": C.PEDESTRIAN},
                   {"id": 3, "name": "bicyclist", "camvid_id": C.BICYCLIST})
COCO_CLASS = {c["camvid_id"]: c["id"] for c in COCO_CATEGORIES}


def _png(path: Path, image: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise EdgeSegError(f"{path}: PNG encoding failed")
    path.write_bytes(buf.tobytes())


def frame_masks(f: SynthFrame) -> list[tuple[SynthObject, dict]]:
    """(object, RLE of its visible mask) for every object of a frame, encoded once for all writers."""
    w = f.instance_ids.shape[1]
    out = []
    for o in f.objects:
        x0, x1 = int(o.box[0]), int(o.box[2])
        out.append((o, rle.encode_columns(f.instance_ids[:, x0:x1] == o.track_id, w, x0)))
    return out


class LabelPngWriter:
    """DIR/NNNNNN.png per frame: the semantic map (uint8) or the instance-id map (uint16)."""

    def __init__(self, directory: Path, instances: bool):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.instances = instances

    def write(self, f: SynthFrame) -> None:
        image = f.instance_ids if self.instances else f.semantic
        _png(self.directory / f"{f.frame.index:06d}.png", image)


class MotsWriter:
    """KITTI MOTS txt: ``frame obj_id class_id img_h img_w rle`` per object, frames 0-based."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = self.path.open("w", encoding="ascii", newline="\n")

    def write(self, f: SynthFrame, masks: list[tuple[SynthObject, dict]]) -> None:
        h, w = f.semantic.shape
        for o, r in masks:
            if o.track_id > MOTS_MAX_TRACK:
                raise EdgeSegError(f"{self.path}: frame {f.frame.index}: track id {o.track_id} does not fit KITTI "
                                   f"MOTS ids (max {MOTS_MAX_TRACK}); write fewer frames")
            cls = MOTS_CLASS[o.label]
            self._file.write(f"{f.frame.index} {cls * 1000 + o.track_id} {cls} {h} {w} {r['counts']}\n")

    def close(self) -> None:
        self._file.close()


class MotChallengeWriter:
    """MOTChallenge gt.txt: ``frame,id,x,y,w,h,conf,class,visibility`` with 1-based frames."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="ascii", newline="\n")

    def write(self, f: SynthFrame) -> None:
        for o in f.objects:
            x1, y1, x2, y2 = (float(v) for v in o.box)
            self._file.write(f"{f.frame.index + 1},{o.track_id},{x1:.1f},{y1:.1f},{x2 - x1:.1f},{y2 - y1:.1f},1,"
                             f"{MOT_CLASS[o.label]},{o.visible_fraction:.4f}\n")

    def close(self) -> None:
        self._file.close()


class CocoWriter:
    """COCO instance JSON, written on close: one image per frame, RLE segmentations, track ids.

    Images are frames of the clip's video; ``file_name`` is the frame's PNG name (as the label maps
    use) for tools that want the frames extracted, and ``frame_index`` locates it in the video."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._images: list[dict] = []
        self._annotations: list[dict] = []

    def write(self, f: SynthFrame, masks: list[tuple[SynthObject, dict]]) -> None:
        h, w = f.semantic.shape
        image_id = f.frame.index + 1
        self._images.append({"id": image_id, "file_name": f"{f.frame.index:06d}.png", "width": w,
                             "height": h, "frame_index": f.frame.index})
        for o, r in masks:
            x1, y1, x2, y2 = (float(v) for v in o.box)
            self._annotations.append({
                "id": len(self._annotations) + 1, "image_id": image_id, "category_id": COCO_CLASS[o.label],
                "segmentation": r, "area": rle.area(r), "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0,
                "track_id": o.track_id, "visibility": round(o.visible_fraction, 4)})

    def close(self, info: dict) -> None:
        doc = {"info": info, "images": self._images, "annotations": self._annotations,
               "categories": [{"id": c["id"], "name": c["name"], "supercategory": "road user"}
                              for c in COCO_CATEGORIES]}
        self.path.write_text(json.dumps(doc, separators=(",", ":")), encoding="ascii")

