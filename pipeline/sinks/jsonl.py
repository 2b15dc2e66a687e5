"""One JSON object per frame, one line each (JSON Lines), flushed as written.

Flushing every line means a run that is killed loses at most the frame being written, and a
consumer can ``tail -f`` the file live. Schema of each line (every key always present, in this order):

    source_id   str    the Frame's source_id
    frame       int    0-based frame index in its source
    pts         float  presentation time, seconds
    width       int    frame width in pixels
    height      int    frame height in pixels
    model       str    name of the semantic model (its card's name)
    coverage    object class name -> fraction of the frame's pixels (0..1, 6 decimals); classes with
                       no pixels are omitted; {} when the frame has no semantic result
    counts      object class name -> number of instances in the frame; classes with none are omitted;
                       {} when the frame has no instances (or no instance result)
    timings_ms  object stage name -> milliseconds spent on this frame (may be {})
    instances   array  one object per instance, [] when none (or no instance result):
        class     str    class name
        score     float  confidence, 4 decimals
        box       array  [x1, y1, x2, y2] in pixels of the frame, 1 decimal
        track_id  int    the tracker's id; only present once a tracker has run
        mask      object COCO RLE {"size": [height, width], "counts": str}: the compressed string form
                         that pycocotools.mask.decode reads (pipeline.io.rle.decode too)
    panoptic    array  the panoptic map's segments in ascending id, [] when the frame has no panoptic
                       result (pipeline.panoptic explains the ids); the pixels are in the mask sink's
                       ``_panoptic.png`` (id = R + 256 G + 256^2 B, 0 = void):
        id        int    the segment's id in that PNG
        class     str    class name (of the panoptic label set)
        isthing   bool   true for an object, false for a stuff region (all pixels of one stuff class)
        area      int    pixels
        track_id  int    the object's track id; only for things once a tracker has run
    analytics   object the analytics of the frame (counts, tracked, unique, unique_window, lines, zones,
                       road; keys documented in pipeline.analytics), null when analytics are off

Each instance's ``mask`` comes last in it, so that its short fields stay readable. ``panoptic`` and
``analytics`` follow the long ``instances`` array because they were added later: every earlier key keeps
its place. Masks are
encoded exactly, also where a model's mask reaches outside its box.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.errors import EdgeSegError
from pipeline.io import rle
from pipeline.types import FrameResult, Instances, PanopticMap

SCHEMA_KEYS = ("source_id", "frame", "pts", "width", "height", "model", "coverage", "counts", "timings_ms",
               "instances", "panoptic", "analytics")


def instance_records(instances: Instances | None) -> list[dict]:
    """The ``instances`` array of a line (see the module docstring).

    Each mask is run-length encoded over the columns its pixels span only (found for all masks in one
    reduction): RLE runs down columns, so the columns outside cost nothing but two counts, and an
    object is usually a small part of the frame."""
    if instances is None or not len(instances):
        return []
    masks = instances.masks
    width = masks.shape[2]
    columns = masks.any(axis=1)  # (N, W): which columns each mask touches
    present = columns.any(axis=1)
    first = np.where(present, columns.argmax(axis=1), 0)
    stop = np.where(present, width - columns[:, ::-1].argmax(axis=1), 0)
    scores = np.round(instances.scores.astype(np.float64), 4).tolist()
    boxes = np.round(instances.boxes.astype(np.float64), 1).tolist()
    tracks = instances.track_ids.tolist() if instances.track_ids is not None else None
    records = []
    for i, c in enumerate(instances.classes.tolist()):
        rec = {"class": instances.class_names[c], "score": scores[i], "box": boxes[i]}
        if tracks is not None:
            rec["track_id"] = tracks[i]
        rec["mask"] = rle.encode_columns(masks[i, :, first[i]:stop[i]], width, int(first[i]))
        records.append(rec)
    return records


def panoptic_records(panoptic: PanopticMap | None) -> list[dict]:
    """The ``panoptic`` array of a line (see the module docstring)."""
    if panoptic is None:
        return []
    records = []
    for s in panoptic.segments:
        rec = {"id": s.id, "class": panoptic.classes[s.category], "isthing": s.isthing, "area": s.area}
        if s.track_id is not None:
            rec["track_id"] = s.track_id
        records.append(rec)
    return records


def record(result: FrameResult, model: str) -> dict:
    """The JSON object for one frame (see the module docstring)."""
    frame = result.frame
    coverage = result.semantic.coverage if result.semantic is not None else {}
    return {
        "source_id": frame.source_id,
        "frame": frame.index,
        "pts": round(frame.pts, 6),
        "width": frame.size[0],
        "height": frame.size[1],
        "model": model,
        "coverage": {name: round(share, 6) for name, share in coverage.items()},
        "counts": result.instances.counts if result.instances is not None else {},
        "timings_ms": {stage: round(ms, 3) for stage, ms in result.timings_ms.items()},
        "instances": instance_records(result.instances),
        "panoptic": panoptic_records(result.panoptic),
        "analytics": result.analytics.to_record() if result.analytics is not None else None,
    }


class JsonlSink:
    def __init__(self, path: str | Path, model: str):
        self.path = Path(path)
        self.model = model
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
        except OSError as e:
            raise EdgeSegError(f"{self.path}: cannot open for writing: {e.strerror}") from None

    def write(self, result: FrameResult) -> None:
        self._file.write(json.dumps(record(result, self.model), separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
