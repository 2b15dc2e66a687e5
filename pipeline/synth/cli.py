"""`edgeseg synth`: render a seeded clip and write its video and ground truth.

Layout of --out: video.mp4, semantic/NNNNNN.png, instances/NNNNNN.png, mots.txt, gt/gt.txt,
coco.json, meta.json. The same arguments give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline.errors import EdgeSegError
from pipeline.io.video_writer import H264Writer
from pipeline.labels import CAMVID
from pipeline.synth import SynthWorld
from pipeline.synth.writers import (COCO_CATEGORIES, MOT_CLASS, MOTS_CLASS, MOTS_MAX_TRACK, CocoWriter,
                                    LabelPngWriter, MotChallengeWriter, MotsWriter, frame_masks)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise EdgeSegError(f"--out {out}: exists and is not a directory")
    if args.frames <= 0:
        raise EdgeSegError(f"--frames must be positive, got {args.frames}")
    if not args.fps > 0:
        raise EdgeSegError(f"--fps must be positive, got {args.fps}")
    if args.seed < 0:
        raise EdgeSegError(f"--seed must be >= 0, got {args.seed}")
    width, height = args.size
    if width % 2 or height % 2 or width < 16 or height < 16:
        raise EdgeSegError(f"--size must be even and at least 16x16 (H.264), got {width}x{height}")
    world = SynthWorld(args.seed, (width, height), args.fps)
    if world.track_count(args.frames) > MOTS_MAX_TRACK:
        raise EdgeSegError(f"--frames {args.frames}: more than {MOTS_MAX_TRACK} tracks, which KITTI MOTS ids cannot "
                           f"hold; write fewer frames")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EdgeSegError(f"--out {out}: cannot create directory: {e.strerror}") from None
    cv2.setNumThreads(1)  # rendering is single-threaded by design; keeps timings and output reproducible
    for folder in ("semantic", "instances"):  # the clip owns these: no frames left over from a longer run
        for stale in (out / folder).glob("[0-9]*.png"):
            stale.unlink()

    semantic = LabelPngWriter(out / "semantic", instances=False)
    instances = LabelPngWriter(out / "instances", instances=True)
    mots = MotsWriter(out / "mots.txt")
    mot = MotChallengeWriter(out / "gt" / "gt.txt")
    coco = CocoWriter(out / "coco.json")
    columns = (TextColumn("[bold]synth[/] seed {task.fields[seed]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[objects]} objects"), TimeRemainingColumn())
    try:
        with H264Writer(out / "video.mp4", args.fps, (width, height)) as video, \
                Progress(*columns, transient=False) as progress:
            task = progress.add_task("render", total=args.frames, seed=args.seed, objects=0)
            for f in world.frames(args.frames):
                masks = frame_masks(f)
                video.write(f.frame.image)
                semantic.write(f)
                instances.write(f)
                mots.write(f, masks)
                mot.write(f)
                coco.write(f, masks)
                progress.update(task, advance=1, objects=len(f.objects))
    finally:
        mots.close()
        mot.close()
    meta = _meta(world, args.frames)
    coco.close({"description": f"EdgeSeg synthetic road world, seed {args.seed}", "version": "1",
                "video": "video.mp4", "fps": world.fps})
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="ascii")
    print(f"wrote {args.frames} frames of synth:{args.seed} to {out}")
    return 0


def _meta(world: SynthWorld, frames: int) -> dict:
    names = CAMVID.classes
    return {
        "seed": world.seed, "size": list(world.size), "fps": world.fps, "frames": frames,
        "camera": "dashcam" if world.moving else "static",
        "label_set": CAMVID.name, "classes": list(names), "void_index": CAMVID.void_index,
        "palette": [list(c) for c in CAMVID.palette],
        "files": {
            "video.mp4": "H.264, BGR frames as rendered",
            "semantic/NNNNNN.png": "uint8 CamVid class ids",
            "instances/NNNNNN.png": "uint16 track ids, 0 = no object",
            "mots.txt": "KITTI MOTS: frame obj_id class_id img_h img_w rle; frames 0-based, obj_id = class*1000 + "
                        "track id",
            "gt/gt.txt": "MOTChallenge: frame,id,x,y,w,h,conf,class,visibility; frames 1-based, visible-mask boxes "
                         "in 0-based pixels",
            "coco.json": "COCO instances, compressed RLE, track_id per annotation",
        },
        "class_ids": {
            "kitti_mots": {names[k]: v for k, v in MOTS_CLASS.items()},
            "motchallenge": {names[k]: v for k, v in MOT_CLASS.items()},
            "coco": {names[c["camvid_id"]]: c["id"] for c in COCO_CATEGORIES},
        },
        "notes": "Bicyclists are KITTI MOTS class 2 (pedestrian) and MOTChallenge class 2 (person on vehicle).",
    }
