"""`edgeseg synth` output read back with independent readers: PNG, PyAV, pycocotools, plain parsing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from pipeline.io import rle
from pipeline.synth import SynthWorld
from pipeline.synth.cli import run

SIZE, FRAMES, SEED = (160, 96), 12, 4


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("synth")
    run(argparse.Namespace(out=str(d), frames=FRAMES, seed=SEED, size=SIZE, fps=10.0))
    return d


@pytest.fixture(scope="module")
def frames():
    return list(SynthWorld(SEED, SIZE, 10.0).frames(FRAMES))


def _png(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_label_pngs(out: Path, frames) -> None:
    for f in frames:
        sem = _png(out / "semantic" / f"{f.frame.index:06d}.png")
        inst = _png(out / "instances" / f"{f.frame.index:06d}.png")
        assert sem.dtype == np.uint8 and inst.dtype == np.uint16
        assert np.array_equal(sem, f.semantic) and np.array_equal(inst, f.instance_ids)


def test_video_decodes_to_all_frames(out: Path, frames) -> None:
    with av.open(str(out / "video.mp4")) as container:
        decoded = [fr.to_ndarray(format="bgr24") for fr in container.decode(video=0)]
    assert len(decoded) == FRAMES
    assert decoded[0].shape == (SIZE[1], SIZE[0], 3)
    # lossy, but the same picture: mean absolute error of a few grey levels
    assert np.abs(decoded[5].astype(int) - frames[5].frame.image.astype(int)).mean() < 12


def test_mots_rle_rebuilds_the_instance_maps(out: Path, frames) -> None:
    maps = {f.frame.index: np.zeros(SIZE[::-1], np.uint16) for f in frames}
    classes = {}
    for line in (out / "mots.txt").read_text().splitlines():
        frame, obj_id, cls, h, w, counts = line.split(" ")
        assert (int(h), int(w)) == SIZE[::-1]
        m = rle.decode({"size": [int(h), int(w)], "counts": counts})
        track = int(obj_id) % 1000
        assert int(obj_id) // 1000 == int(cls) and int(cls) in (1, 2)
        assert not maps[int(frame)][m].any()  # masks of one frame do not overlap
        maps[int(frame)][m] = track
        classes[track] = int(cls)
    for f in frames:
        assert np.array_equal(maps[f.frame.index], f.instance_ids)
        for o in f.objects:
            assert classes[o.track_id] == (1 if o.label == 8 else 2)


def test_motchallenge_rows(out: Path, frames) -> None:
    rows = [line.split(",") for line in (out / "gt" / "gt.txt").read_text().splitlines()]
    assert len(rows) == sum(len(f.objects) for f in frames)
    expected = [(f.frame.index + 1, o.track_id, *o.box.tolist()) for f in frames for o in f.objects]
    for row, (frame, tid, x1, y1, x2, y2) in zip(rows, expected):
        assert int(row[0]) == frame and int(row[1]) == tid
        assert [float(v) for v in row[2:6]] == [x1, y1, x2 - x1, y2 - y1]
        assert int(row[7]) in (1, 2, 3) and 0 < float(row[8]) <= 1


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_coco_json_loads_in_pycocotools(out: Path, frames) -> None:
    coco_api = pytest.importorskip("pycocotools.coco")
    coco = coco_api.COCO(str(out / "coco.json"))
    assert sorted(c["name"] for c in coco.loadCats(coco.getCatIds())) == ["bicyclist", "car", "pedestrian"]
    for f in frames[::4]:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[f.frame.index + 1]))
        assert sorted(a["track_id"] for a in anns) == [o.track_id for o in f.objects]
        for a in anns:
            m = coco.annToMask(a).astype(bool)
            assert np.array_equal(m, f.instance_ids == a["track_id"])
            assert a["area"] == int(m.sum()) and a["iscrowd"] == 0
            ys, xs = np.nonzero(m)
            assert a["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_meta(out: Path) -> None:
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seed"] == SEED and meta["size"] == list(SIZE) and meta["frames"] == FRAMES
    assert meta["classes"][8] == "Car" and len(meta["palette"]) == 11
    assert meta["class_ids"]["kitti_mots"]["Bicyclist"] == 2
