"""Instance training data: CamVid connected components, synthetic-world ground truth, copy-paste and the
geometric / photometric augmentation, on hand-made frames and on the real data."""

from __future__ import annotations

import numpy as np

from pipeline.labels import CAMVID
from pipeline.synth import SynthWorld
from pipeline.train.instance_data import (
    IGNORE,
    PAVEMENT,
    ROAD,
    THING_CLASSES,
    Augmenter,
    CopyPaste,
    InstanceImage,
    PatchBank,
    SynthSource,
    camvid_instances,
    load_camvid,
    mask_boxes,
    synth_instances,
)

CAR, PED, CYC = (CAMVID.index(n) for n in THING_CLASSES)
ROAD_ID, PAVEMENT_ID = CAMVID.index("Road"), CAMVID.index("Pavement")


def test_mask_boxes_pixel_edges():
    masks = np.zeros((2, 10, 12), bool)
    masks[0, 2:5, 3:8] = True  # columns 3..7, rows 2..4
    assert mask_boxes(masks).tolist() == [[3, 2, 8, 5], [0, 0, 0, 0]]


def test_camvid_components_touching_merge_small_dropped():
    labels = np.full((40, 60), ROAD_ID, np.uint8)
    labels[5:15, 5:15] = CAR  # 100 px
    labels[5:15, 15:25] = CAR  # touches the first: one instance of 200 px
    labels[20:30, 40:50] = CAR  # separate
    labels[16:17, 26:27] = CAR  # diagonal neighbour of nothing, 1 px: dropped
    labels[20:35, 5:10] = PED  # 75 px
    labels[30:35, 30:35] = CYC  # 25 px: dropped at min_area 50
    labels[0:3, :] = PAVEMENT_ID
    inst = camvid_instances(np.zeros((40, 60, 3), np.uint8), labels, min_area=50)
    assert sorted(inst.classes.tolist()) == [0, 0, 1]
    areas = sorted(int(a) for a in inst.masks().sum(axis=(1, 2)))
    assert areas == [75, 100, 200]
    assert (inst.ground[0:3] == PAVEMENT).all() and inst.ground[39, 59] == ROAD and inst.ground[10, 10] == 0


def test_camvid_diagonal_pixels_connect():
    labels = np.zeros((20, 20), np.uint8)
    labels[2:10, 2:10] = PED
    labels[10:18, 10:18] = PED  # meets the first block only at a corner: 8-connected, one instance
    inst = camvid_instances(np.zeros((20, 20, 3), np.uint8), labels, min_area=50)
    assert inst.classes.tolist() == [1]


def test_camvid_real_frames(shared_dir):
    frames = load_camvid(shared_dir / "data/camvid", "val", min_area=50)
    assert len(frames) == 101
    counts = np.bincount(np.concatenate([f.classes for f in frames]), minlength=3)
    assert (counts > 0).all(), counts  # cars, pedestrians and cyclists all occur in val
    frame = max(frames, key=lambda f: len(f.classes))
    masks = frame.masks()
    assert not (masks.sum(0) > 1).any()  # instances never overlap
    assert (masks.sum(axis=(1, 2)) >= 50).all()


def test_synth_instances_match_renderer_and_filter():
    frame = SynthWorld(seed=2001, size=(320, 180)).render(120)
    inst = synth_instances(frame, min_area=30, min_visible=0.3)
    areas = np.bincount(frame.instance_ids.ravel())
    kept = [o for o in frame.objects if areas[o.track_id] >= 30 and o.visible_fraction >= 0.3]
    assert 0 < len(kept) < len(frame.objects)  # this frame has objects on both sides of the filter
    assert len(inst.classes) == len(kept)
    masks = inst.masks()
    for k, obj in enumerate(kept):
        assert THING_CLASSES[inst.classes[k]] == CAMVID.classes[obj.label]
        assert np.array_equal(masks[k], frame.instance_ids == obj.track_id)
        np.testing.assert_array_equal(mask_boxes(masks[k:k + 1])[0], obj.box)  # same box convention


def test_ignore_rest_keeps_the_left_out_synthetic_objects_as_ignore():
    frame = SynthWorld(seed=2001, size=(320, 180)).render(120)
    scored = synth_instances(frame, min_area=30, min_visible=0.3)
    inst = synth_instances(frame, min_area=30, min_visible=0.3, ignore_rest=True)
    areas = np.bincount(frame.instance_ids.ravel(), minlength=max(o.track_id for o in frame.objects) + 1)
    things = [o for o in frame.objects if CAMVID.classes[o.label] in THING_CLASSES and areas[o.track_id] > 0]
    assert len(inst.classes) == len(things) > len(scored.classes)  # every visible thing, left-out ones too
    left_out = inst.classes == IGNORE
    assert left_out.sum() == len(things) - len(scored.classes)
    for k, obj in enumerate(things):
        assert left_out[k] == (areas[obj.track_id] < 30 or obj.visible_fraction < 0.3)
    # what is scored is unchanged: the same instances, ignore ones dropped from the ground truth
    a, b = scored.to_instances(), inst.to_instances()
    assert np.array_equal(a.classes, b.classes) and np.array_equal(a.masks, b.masks)


def test_ignore_rest_keeps_small_camvid_components_as_ignore():
    labels = np.zeros((40, 60), np.uint8)
    labels[5:15, 5:15] = CAR  # 100 px: an instance
    labels[30:35, 30:35] = CYC  # 25 px: under min_area
    labels[20:22, 50:51] = PED  # 2 px
    inst = camvid_instances(np.zeros((40, 60, 3), np.uint8), labels, min_area=50, ignore_rest=True)
    assert sorted(inst.classes.tolist()) == [IGNORE, IGNORE, 0]
    masks = inst.masks()
    assert sorted(masks[inst.classes == IGNORE].sum(axis=(1, 2)).tolist()) == [2, 25]
    assert inst.to_instances().classes.tolist() == [0]


def test_synth_source_is_reproducible():
    """Also with its worlds built up front (as the trainer does before forking workers): building draws
    nothing from the generator."""
    a = SynthSource(range(2000, 2003), 300, (160, 90), 10, 0.1, np.random.default_rng(5))
    b = SynthSource(range(2000, 2003), 300, (160, 90), 10, 0.1, np.random.default_rng(5))
    b.build_all()
    assert b.frames.built == [2000, 2001, 2002] and a.frames.built == []
    for _ in range(3):
        x, y = a.sample(), b.sample()
        assert np.array_equal(x.image, y.image) and np.array_equal(x.ids, y.ids)


def _frame(ids: np.ndarray, classes: list[int], ground: np.ndarray | None, value: int = 0) -> InstanceImage:
    image = np.full((*ids.shape, 3), value, np.uint8)
    return InstanceImage(image, ids.astype(np.uint16), np.array(classes, np.int64), ground)


def test_copy_paste_scale_position_and_depth_order():
    # bank: one car, rows 50..69 x cols 40..59 of a 100x100 frame (bottom 0.70, horizon 0.40)
    src_ids = np.zeros((100, 100), np.uint16)
    src_ids[50:70, 40:60] = 1
    source = _frame(src_ids, [0], None, value=200)
    bank = PatchBank([source], min_area=50, horizon=0.4)
    assert len(bank) == 1
    # target: road only on row 84 -> the car's bottom edge at 85, 45 px below the horizon vs 30: scale 1.5
    ground = np.zeros((100, 100), np.uint8)
    ground[84] = ROAD
    ids = np.zeros((100, 100), np.uint16)
    ids[50:60] = 1  # a far car (bottom edge 60): the paste covers its rows 55..59
    ids[80:90] = 2  # a near car (bottom edge 90): it hides the paste's rows 80..84
    target = _frame(ids, [0, 0], ground)
    out = CopyPaste(bank, horizon=0.4, max_objects=1, min_area=20, rng=np.random.default_rng(0))(target)
    assert out.classes.tolist() == [0, 0, 0]
    far, near, pasted = out.masks()
    cols = np.flatnonzero(pasted.any(0))
    assert len(cols) == 30 and pasted[55:80, cols].all() and not pasted[80:].any()  # 30x30, cut by the near car
    assert np.array_equal(near, ids == 2)
    assert not far[55:60, cols].any() and far[50:55].all()
    assert (out.image[pasted] == 200).all() and (out.image[~pasted] == 0).all()


def test_copy_paste_drops_covered_instances_and_skips_frames_without_ground():
    src_ids = np.zeros((100, 100), np.uint16)
    src_ids[50:70, 40:60] = 1
    bank = PatchBank([_frame(src_ids, [1], None)], min_area=50, horizon=0.4)
    ground = np.zeros((100, 100), np.uint8)
    ground[84, 50] = PAVEMENT  # pedestrians may stand on pavement: the paste spans columns 35..64
    ids = np.zeros((100, 100), np.uint16)
    ids[82:84, 45:55] = 1  # farther (bottom edge 84, the paste's 85): covered entirely, dropped
    ids[82:84, 0:20] = 2  # beside the paste: kept
    paste = CopyPaste(bank, horizon=0.4, max_objects=1, min_area=15, rng=np.random.default_rng(1))
    out = paste(_frame(ids, [2, 0], ground))
    assert out.classes.tolist() == [0, 1]
    assert np.array_equal(out.masks()[0], ids == 2) and out.masks()[1][82:84, 45:55].all()
    no_ground = _frame(ids, [2, 0], None)
    assert paste(no_ground) is no_ground


def test_with_ignore_rest_covered_instances_turn_ignore_and_the_bank_skips_ignore_ones():
    src_ids = np.zeros((100, 100), np.uint16)
    src_ids[50:70, 40:60] = 1
    src_ids[10:30, 10:30] = 2  # a left-out object: never pasted
    bank = PatchBank([_frame(src_ids, [1, IGNORE], None)], min_area=50, horizon=0.05)
    assert len(bank) == 1 and bank.classes == [1]
    ground = np.zeros((100, 100), np.uint8)
    ground[84, 50] = PAVEMENT
    ids = np.zeros((100, 100), np.uint16)
    ids[80:84, 45:55] = 1  # behind the paste (a 30x30 pedestrian on columns 35..64, rows 55..84): gone
    ids[82:84, 55:70] = 2  # 30 px, of which columns 65..69 stay visible: 10 px
    paste = CopyPaste(bank, horizon=0.4, max_objects=1, min_area=25, rng=np.random.default_rng(1), ignore_rest=True)
    out = paste(_frame(ids, [0, 0], ground))
    assert out.classes.tolist() == [IGNORE, 1]  # the partly covered car is ignore (not dropped), then the paste
    assert np.array_equal(out.masks()[0], (ids == 2) & (np.arange(100) >= 65))
    # a frame left with no instance at all keeps integer classes (the loss indexes with them)
    nowhere = np.zeros((100, 100), np.uint8)
    nowhere[41, 50] = PAVEMENT  # just under the horizon: no rescale within bounds, nothing pasted
    empty = paste(_frame(np.zeros((100, 100), np.uint16), [], nowhere))
    assert empty.classes.dtype == np.int64 and len(empty.classes) == 0


def _augmenter(**kw) -> Augmenter:
    args = dict(size=(100, 100), scale=(1.0, 1.0), aspect=1.0, flip=0.0, fill=(1, 2, 3), min_box=2,
                rng=np.random.default_rng(0), photometric=False)
    return Augmenter(**(args | kw))


def test_fit_stretches_the_frame():
    ids = np.zeros((100, 200), np.uint16)
    ids[10:50, 20:60] = 1
    sample = _augmenter().fit(_frame(ids, [1], None, value=7))
    assert sample.image.shape == (100, 100, 3) and (sample.image == 7).all()
    np.testing.assert_allclose(sample.boxes[0], [0.1, 0.1, 0.3, 0.5], atol=0.011)
    assert sample.masks.shape == (1, 100, 100) and sample.classes.tolist() == [1]


def test_fit_to_a_non_square_input_normalises_boxes_by_each_side():
    ids = np.zeros((90, 160), np.uint16)
    ids[9:45, 16:80] = 1  # x 0.1..0.5, y 0.1..0.5 of the frame
    ids[45:90, 80:160] = 2  # the bottom-right quarter
    sample = _augmenter(size=(64, 36)).fit(_frame(ids, [1, 2], None, value=5))
    assert sample.image.shape == (36, 64, 3) and sample.masks.shape == (2, 36, 64)
    np.testing.assert_allclose(sample.boxes, [[0.1, 0.1, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]], atol=0.02)
    assert sample.masks[1, 18:, 32:].all() and not sample.masks[1, :17].any()


def test_flip_mirrors_image_and_boxes():
    rng = np.random.default_rng(3)
    ids = np.zeros((80, 120), np.uint16)
    ids[10:30, 5:40] = 1
    frame = InstanceImage(rng.integers(0, 255, (80, 120, 3), dtype=np.uint8), ids, np.array([0]))
    plain = _augmenter().fit(frame)
    flipped = _augmenter(flip=1.0)(frame)
    assert np.abs(flipped.image.astype(int) - plain.image[:, ::-1]).max() <= 1
    np.testing.assert_allclose(flipped.boxes[0], [1 - plain.boxes[0, 2], plain.boxes[0, 1], 1 - plain.boxes[0, 0],
                                                  plain.boxes[0, 3]], atol=1e-6)


def test_random_augment_targets_are_consistent():
    rng = np.random.default_rng(11)
    ids = np.zeros((90, 160), np.uint16)
    ids[40:80, 10:50] = 1
    ids[20:30, 100:104] = 2
    ids[60:61, 150:152] = 3  # 1x2 px: below min_box after any zoom-out
    frame = InstanceImage(rng.integers(0, 255, (90, 160, 3), dtype=np.uint8), ids, np.array([0, 1, 2]))
    aug = _augmenter(scale=(0.5, 1.5), aspect=1.3, flip=0.5, min_box=4, rng=rng, photometric=True)
    zoomed_out = 0
    for _ in range(20):
        s = aug(frame)
        assert s.image.shape == (100, 100, 3) and s.image.dtype == np.uint8
        assert 2 not in s.classes.tolist()
        assert len(s.boxes) == len(s.classes) == len(s.masks)
        assert ((s.boxes >= 0) & (s.boxes <= 1)).all()
        np.testing.assert_allclose(mask_boxes(s.masks.astype(bool)) / 100, s.boxes)
        wh = (s.boxes[:, 2:] - s.boxes[:, :2]) * 100
        assert (wh >= 4 - 1e-4).all()
        zoomed_out += int((s.image == s.image[0, 0]).all(axis=2)[0].all())
    assert zoomed_out > 0  # some windows were larger than the frame (fill colour along the top row)


def test_ignore_small_turns_tiny_and_ignore_instances_into_ignore_boxes():
    ids = np.zeros((100, 100), np.uint16)
    ids[10:50, 20:60] = 1  # kept
    ids[70:71, 70:72] = 2  # 1x2 px, under min_box 2 in height
    ids[80:90, 10:20] = 3  # a left-out object
    frame = _frame(ids, [0, 1, IGNORE], None)
    plain = _augmenter().fit(frame)
    assert plain.classes.tolist() == [0] and plain.ignore.shape == (0, 4)
    sample = _augmenter(ignore_small=True).fit(frame)
    assert sample.classes.tolist() == [0] and len(sample.masks) == 1
    np.testing.assert_allclose(sample.ignore, [[0.70, 0.70, 0.72, 0.71], [0.10, 0.80, 0.20, 0.90]])
