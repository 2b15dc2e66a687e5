"""Annotators on real ground truth: the synthetic world's frames and its exact instance masks."""

from __future__ import annotations

import dataclasses
from collections import Counter

import cv2
import numpy as np
import pytest

from pipeline.analytics import Analytics, AnalyticsConfig
from pipeline.annotate import InfoOverlay, InstanceAnnotator, SemanticAnnotator
from pipeline.labels import CAMVID
from pipeline.synth import SynthWorld
from pipeline.types import Frame, FrameResult, Instances, SemanticMap

PALETTE = np.asarray(CAMVID.palette, np.uint8)
GREY = 100
CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def semantic_result(labels: np.ndarray, index: int = 0) -> FrameResult:
    h, w = labels.shape
    frame = Frame(np.full((h, w, 3), GREY, np.uint8), index=index, pts=index / 30)
    return FrameResult(frame, SemanticMap(labels.astype(np.uint8), CAMVID.classes, PALETTE))


@pytest.fixture(scope="module")
def synth_frames():
    """Frames 0 and 1 of seed 7 at 640x360: 14 objects each (cars, a cyclist, a pedestrian), some cut
    by the frame's edge, some occluding others."""
    world = SynthWorld(7, size=(640, 360))
    return [world.render(i) for i in range(2)]


def on_grey(synth_frame, instances: Instances | None = None) -> tuple[np.ndarray, FrameResult]:
    """A flat grey scene (so every drawn pixel shows) and the frame's ground truth as its result."""
    instances = synth_frame.to_instances() if instances is None else instances
    scene = np.full_like(synth_frame.frame.image, GREY)
    return scene, FrameResult(synth_frame.frame, instances=instances)


def borders(masks: np.ndarray) -> np.ndarray:
    """Per mask, its pixels with a 4-neighbour outside it (the frame's outside counts as outside)."""
    eroded = [cv2.erode(m.view(np.uint8), CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0) for m in masks]
    return masks & ~np.stack(eroded).astype(bool)


def test_outlines_are_exactly_the_mask_borders(synth_frames):
    """Thickness 1: the changed pixels are exactly the union of the masks' border pixels -- outer
    outlines, holes (occluders) and edges cut by the frame -- and nothing else."""
    for f in synth_frames:
        scene, res = on_grey(f)
        InstanceAnnotator(thickness=1, labels=False).annotate(scene, res)
        changed = (scene != GREY).any(axis=2)
        np.testing.assert_array_equal(changed, borders(res.instances.masks).any(axis=0))


def test_outline_colour_follows_the_track_across_frames(synth_frames):
    annotator = InstanceAnnotator(thickness=1, labels=False)
    seen: dict[int, set[tuple[int, ...]]] = {}
    for f in synth_frames:
        scene, res = on_grey(f)
        annotator.annotate(scene, res)
        for tid, border in zip(res.instances.track_ids, borders(res.instances.masks)):
            colours = {tuple(c) for c in scene[border].tolist()}
            assert colours == {tuple(annotator.colours[tid % len(annotator.colours)].tolist())}
            seen.setdefault(int(tid), set()).update(colours)
    both = set(synth_frames[0].to_instances().track_ids) & set(synth_frames[1].to_instances().track_ids)
    assert len(both) >= 10 and all(len(seen[int(t)]) == 1 for t in both)
    assert len({next(iter(seen[int(t)])) for t in both}) == len(both)  # distinct tracks, distinct colours


def test_outline_colour_is_per_class_without_track_ids(synth_frames):
    instances = dataclasses.replace(synth_frames[0].to_instances(), track_ids=None)
    annotator = InstanceAnnotator(thickness=1, labels=False)
    scene, res = on_grey(synth_frames[0], instances)
    annotator.annotate(scene, res)
    edge = borders(instances.masks)
    for cls in np.unique(instances.classes):
        colours = {tuple(c) for c in scene[edge[instances.classes == cls].any(axis=0)].tolist()}
        assert colours == {tuple(annotator.colours[cls].tolist())}


def test_labels_name_class_score_and_track_at_the_box_corner(synth_frames):
    f = synth_frames[0]
    instances = f.to_instances()
    annotator = InstanceAnnotator(thickness=1)
    i = int(np.flatnonzero((instances.boxes[:, 1] > 30) & (instances.boxes[:, 0] < 500))[0])  # room above and right
    assert annotator.label(instances, i) == f"{CAMVID.classes[instances.classes[i]]} 1.00 #{instances.track_ids[i]}"
    without = dataclasses.replace(instances, track_ids=None, scores=np.full(len(instances), 0.923, np.float32))
    assert annotator.label(without, i) == f"{CAMVID.classes[instances.classes[i]]} 0.92"
    untracked = dataclasses.replace(without, track_ids=np.full(len(instances), -1, np.int64))
    assert annotator.label(untracked, i) == f"{CAMVID.classes[instances.classes[i]]} 0.92"  # -1: no id shown

    single = Instances(instances.classes[i:i + 1], instances.scores[i:i + 1], instances.boxes[i:i + 1],
                       instances.masks[i:i + 1], instances.class_names, instances.track_ids[i:i + 1])
    scene, res = on_grey(f, single)
    annotator.annotate(scene, res)
    x1, y1 = int(instances.boxes[i, 0]), int(instances.boxes[i, 1])
    tag = scene[y1 - 10:y1, x1 + 1:x1 + 30]  # the tag sits on the box's top edge, starting at its left edge
    colour = annotator.colours[instances.track_ids[i] % len(annotator.colours)]
    assert (tag == colour).all(axis=2).mean() > 0.5  # the tag's fill, the rest is text
    assert not (tag == GREY).all(axis=2).any()
    assert (scene[y1 - 30:y1 - 16] == GREY).all()  # nothing above the tag


def test_higher_score_is_drawn_on_top():
    """Two overlapping squares: where their outlines cross, the more confident one's colour shows,
    whatever the order of the list."""
    masks = np.zeros((2, 40, 40), bool)
    masks[0, 5:25, 5:25] = True
    masks[1, 15:35, 15:35] = True
    boxes = np.array([[5, 5, 25, 25], [15, 15, 35, 35]], np.float32)
    for scores in ([0.9, 0.4], [0.4, 0.9]):
        instances = Instances(np.array([8, 9], np.int32), np.array(scores, np.float32), boxes, masks,
                              CAMVID.classes)
        scene = np.full((40, 40, 3), GREY, np.uint8)
        annotator = InstanceAnnotator(thickness=1, labels=False)
        annotator.annotate(scene, FrameResult(Frame(scene.copy(), 0, 0.0), instances=instances))
        winner = instances.classes[int(np.argmax(scores))]
        assert scene[15, 24].tolist() == annotator.colours[winner].tolist()  # on both outlines


def test_masks_of_another_size_are_refused(synth_frames):
    scene, res = on_grey(synth_frames[0])
    with pytest.raises(ValueError, match="640x360 on a 320x360 scene"):
        InstanceAnnotator().annotate(scene[:, :320].copy(), res)


def test_no_instances_draws_nothing(synth_frames):
    f = synth_frames[0]
    for instances in (None, Instances.empty(360, 640, CAMVID.classes)):
        scene, res = on_grey(f, instances) if instances is not None else (np.full_like(f.frame.image, GREY),
                                                                           FrameResult(f.frame))
        assert (InstanceAnnotator().annotate(scene, res) == GREY).all()


def test_instance_counts_and_the_overlay_count_line(synth_frames):
    f = synth_frames[0]
    truth = Counter(CAMVID.classes[o.label] for o in f.objects)
    res = FrameResult(f.frame, instances=f.to_instances())
    assert res.instances.counts == dict(truth)
    rows = InfoOverlay(top=4).lines(res, fps=None)
    ranked = ", ".join(f"{name} {n}" for name, n in  # by count, ties in class order
                       sorted(truth.items(), key=lambda kv: (-kv[1], CAMVID.index(kv[0]))))
    assert rows[1] == (f"{len(f.objects)} instances: {ranked}", None)
    ins = res.instances
    one = FrameResult(f.frame, instances=Instances(ins.classes[:1], ins.scores[:1], ins.boxes[:1], ins.masks[:1],
                                                   CAMVID.classes))
    assert InfoOverlay().lines(one, fps=None)[1][0] == f"1 instance: {CAMVID.classes[f.objects[0].label]} 1"
    empty = FrameResult(f.frame, instances=Instances.empty(360, 640, CAMVID.classes))
    assert InfoOverlay().lines(empty, fps=None)[1][0] == "0 instances"
    assert empty.instances.counts == {}


def test_overlay_shows_the_objects_seen_so_far(synth_frames):
    """With analytics on tracked instances, a "seen:" line counts distinct track ids per class."""
    engine = Analytics(AnalyticsConfig(road=None))
    for f in synth_frames[:3]:
        res = FrameResult(f.frame, instances=f.to_instances())
        res.analytics = engine.update(f.frame.size, f.frame.pts, res.instances)
    seen = {cls: len(ids) for cls, ids in _ids_by_class(synth_frames[:3]).items()}
    text, swatch = InfoOverlay(top=4).lines(res, fps=None)[2]
    assert text.startswith("seen: ") and swatch is None
    shown = [item.rsplit(" ", 1) for item in text[len("seen: "):].split(", ")]
    assert {name: int(n) for name, n in shown} == seen
    assert [int(n) for _, n in shown] == sorted(seen.values(), reverse=True)  # most seen first


def _ids_by_class(frames) -> dict[str, set[int]]:
    ids: dict[str, set[int]] = {}
    for f in frames:
        for o in f.objects:
            ids.setdefault(CAMVID.classes[o.label], set()).add(o.track_id)
    return ids


def test_semantic_annotator_blends_palette_colours():
    """alpha 0.5 over grey 100: Road RGB (128, 64, 128) -> BGR (128, 64, 128) / 2 + 50 = (114, 82, 114);
    label 11 (a void channel past the 11-colour palette) blends with black: 100 / 2 = 50."""
    labels = np.array([[3, 11]], np.uint8)
    scene = semantic_result(labels).frame.image.copy()
    out = SemanticAnnotator(alpha=0.5).annotate(scene, semantic_result(labels))
    assert out is scene
    assert out[0, 0].tolist() == [114, 82, 114]
    assert out[0, 1].tolist() == [50, 50, 50]


def test_info_overlay_lists_top_classes_and_stays_in_its_corner():
    labels = np.full((120, 200), 3, np.uint8)  # Road 75 %
    labels[:30] = 0  # Sky 25 %
    res = semantic_result(labels, index=42)
    overlay = InfoOverlay(top=3)
    rows = overlay.lines(res, fps=25.0)
    assert rows[0][0] == "frame 42  25.0 fps"
    assert [text for text, _ in rows[1:]] == ["Road 75%", "Sky 25%"]
    assert rows[1][1] == (128, 64, 128)  # Road's swatch in BGR
    scene = overlay.annotate(res.frame.image.copy(), res)
    changed = np.argwhere((scene != GREY).any(axis=2))
    assert changed.size and changed[:, 0].max() < 3 * overlay.line + 6 and changed[:, 1].max() < 150
