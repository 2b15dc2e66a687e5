"""The synthetic world: determinism, random access, and ground truth that matches the pixels."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import EdgeSegError
from pipeline.labels import CAMVID
from pipeline.synth import SynthFrame, SynthWorld
from pipeline.synth.style import WorldStyle

SIZE = (192, 108)
AGENTS = {CAMVID.index("Car"), CAMVID.index("Pedestrian"), CAMVID.index("Bicyclist")}


def _seed(moving: bool) -> int:
    """The first seed whose camera is a dashcam (moving) or a pole camera."""
    return next(s for s in range(100) if WorldStyle.from_seed(s).camera.moving == moving)


@pytest.fixture(scope="module", params=[True, False], ids=["dashcam", "static"])
def clip(request) -> tuple[SynthWorld, list[SynthFrame]]:
    world = SynthWorld(_seed(request.param), SIZE, fps=15.0)
    return world, list(world.frames(150))


def _same(a: SynthFrame, b: SynthFrame) -> None:
    assert np.array_equal(a.frame.image, b.frame.image)
    assert np.array_equal(a.semantic, b.semantic)
    assert np.array_equal(a.instance_ids, b.instance_ids)
    assert [(o.track_id, o.label, o.box.tolist(), o.visible_fraction) for o in a.objects] == \
        [(o.track_id, o.label, o.box.tolist(), o.visible_fraction) for o in b.objects]


def test_frame_fields(clip) -> None:
    world, frames = clip
    f = frames[7]
    assert f.frame.image.shape == (SIZE[1], SIZE[0], 3) and f.frame.image.dtype == np.uint8
    assert f.semantic.shape == SIZE[::-1] and f.semantic.dtype == np.uint8
    assert f.instance_ids.shape == SIZE[::-1] and f.instance_ids.dtype == np.uint16
    assert f.frame.index == 7 and f.frame.pts == pytest.approx(7 / 15.0)
    assert f.frame.source_id == f"synth:{world.seed}"
    assert f.semantic.max() < CAMVID.num_classes


def test_random_access_equals_sequential(clip) -> None:
    world, frames = clip
    fresh = SynthWorld(world.seed, SIZE, fps=15.0)
    for i in (120, 3, 77, 0, 149, 78):  # out of order, first access far into the clip
        _same(fresh.render(i), frames[i])


def test_same_seed_same_frames_different_seed_different_scene(clip) -> None:
    world, frames = clip
    again = SynthWorld(world.seed, SIZE, fps=15.0)
    for i, f in enumerate(again.frames(3)):
        _same(f, frames[i])
    other = SynthWorld(world.seed + 1000, SIZE, fps=15.0).render(0)
    mean_a, mean_b = frames[0].frame.image.reshape(-1, 3).mean(0), other.frame.image.reshape(-1, 3).mean(0)
    hist_a = np.bincount(frames[0].semantic.ravel(), minlength=11) / frames[0].semantic.size
    hist_b = np.bincount(other.semantic.ravel(), minlength=11) / other.semantic.size
    assert np.abs(mean_a - mean_b).max() > 3 or np.abs(hist_a - hist_b).sum() > 0.1


def test_instances_agree_with_semantics_and_boxes_are_tight(clip) -> None:
    _, frames = clip
    for f in frames[::10]:
        inst = f.instance_ids
        assert set(np.unique(f.semantic[inst > 0]).tolist()) <= AGENTS
        agent_px = np.isin(f.semantic, list(AGENTS))
        assert np.array_equal(agent_px, inst > 0)  # every road user pixel belongs to an instance
        assert [o.track_id for o in f.objects] == sorted(set(np.unique(inst).tolist()) - {0})
        for o in f.objects:
            m = inst == o.track_id
            ys, xs = np.nonzero(m)
            assert o.box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert set(np.unique(f.semantic[m]).tolist()) == {o.label}
            assert 0 < o.visible_fraction <= 1


def test_track_ids_persist_and_objects_enter_and_leave(clip) -> None:
    _, frames = clip
    first, last, label = {}, {}, {}
    for i, f in enumerate(frames):
        for o in f.objects:
            first.setdefault(o.track_id, i)
            last[o.track_id] = i
            assert label.setdefault(o.track_id, o.label) == o.label  # an id never changes class
    assert any(i > 0 for i in first.values()), "nobody entered"
    assert any(i < len(frames) - 1 for i in last.values()), "nobody left"
    # between consecutive frames a track's box moves a little, not across the image
    w = SIZE[0]
    for a, b in zip(frames, frames[1:]):
        boxes = {o.track_id: o.box for o in a.objects}
        for o in b.objects:
            if o.track_id in boxes and o.visible_fraction > 0.5:
                ca = (boxes[o.track_id][0] + boxes[o.track_id][2]) / 2
                cb = (o.box[0] + o.box[2]) / 2
                assert abs(ca - cb) < 0.25 * w


def test_occlusion_happens(clip) -> None:
    _, frames = clip
    fractions = [o.visible_fraction for f in frames for o in f.objects]
    assert min(fractions) < 0.5
    assert max(fractions) == 1.0


def test_to_instances(clip) -> None:
    _, frames = clip
    f = next(f for f in frames if len(f.objects) >= 2)
    inst = f.to_instances()
    assert len(inst) == len(f.objects)
    assert inst.class_names == CAMVID.classes
    assert inst.track_ids.tolist() == [o.track_id for o in f.objects]
    assert inst.classes.tolist() == [o.label for o in f.objects]
    assert np.all(inst.scores == 1.0)
    for k, o in enumerate(f.objects):
        assert np.array_equal(inst.masks[k], f.instance_ids == o.track_id)
        assert np.array_equal(inst.boxes[k], o.box)


@pytest.mark.parametrize("kwargs", [dict(seed=-1), dict(seed=0, size=(0, 100)), dict(seed=0, size=(640,)),
                                    dict(seed=0, fps=0.0)])
def test_bad_arguments_are_user_errors(kwargs) -> None:
    with pytest.raises(EdgeSegError):
        SynthWorld(**kwargs)
