"""`edgeseg track --det FILE --format mot|kitti --out FILE`: the tracker alone on a public detection file.

This is how the tracker is benchmarked on published detections: read the file, step the tracker through
every frame (empty ones too) at time ``frame / fps``, write each confirmed track's detection of the frame
with its id in the benchmark's results format. Boxes written are the detections the tracker matched, as
the reference trackers report them, so that scores compare association, not box smoothing.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from pipeline.errors import EdgeSegError
from pipeline.tracking import Tracker, TrackerConfig
from pipeline.tracking.files import DEFAULT_FPS, BoxSequence, FrameBoxes, read_boxes, write_boxes
from pipeline.yamlfile import read_mapping


def track_frame(tracker: Tracker, detections: FrameBoxes, pts: float) -> FrameBoxes:
    """One tracker step; the detections that updated a confirmed track, carrying its id."""
    ids = tracker.update(detections.boxes, detections.scores, detections.classes, pts)
    tracked = ids > 0
    return replace(detections.take(tracked), ids=ids[tracked].astype(np.int64))


def track_sequence(sequence: BoxSequence, fps: float, config: TrackerConfig | None = None) -> BoxSequence:
    """Run a fresh tracker over the whole sequence; the result is a sequence of tracked boxes."""
    tracker = Tracker(config or TrackerConfig(), class_names=sequence.class_names)
    frames = tuple(track_frame(tracker, f, f.frame / fps) for f in sequence.frames)
    return replace(sequence, frames=frames)


def load_tracker_config(path: Path) -> TrackerConfig:
    """Tracker parameters from YAML: TrackerConfig keys at the top level, or a pipeline config's ``tracker``
    section (so the config a pipeline runs with can be benchmarked as it is)."""
    raw = read_mapping(path, "tracker config")
    section, prefix = (raw["tracker"], ("tracker",)) if "tracker" in raw else (raw, ())
    try:
        return TrackerConfig.model_validate(section or {})
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(k) for k in prefix + tuple(first["loc"])) or "(top level)"
        raise EdgeSegError(f"{path}: key '{key}': {first['msg']}") from None


def run(args: argparse.Namespace) -> int:
    fps = args.fps if args.fps is not None else DEFAULT_FPS[args.format]
    if not (math.isfinite(fps) and fps > 0):
        raise EdgeSegError(f"--fps must be a positive number of frames per second, got {args.fps}")
    sequence = read_boxes(args.det, args.format)
    if args.classes:
        sequence = sequence.only_classes(c for c in args.classes.split(",") if c.strip())
    result = track_sequence(sequence, fps, load_tracker_config(Path(args.tracker)) if args.tracker else None)
    path = write_boxes(args.out, result)
    track_ids = {int(i) for f in result.frames for i in f.ids}
    print(f"{len(sequence.frames)} frames, {sequence.num_boxes} detections -> {len(track_ids)} tracks, "
          f"{result.num_boxes} tracked boxes at {fps:g} fps: {path}", file=sys.stderr)
    return 0
