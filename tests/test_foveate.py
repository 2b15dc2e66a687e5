"""The foveating warp (pipeline.foveate): its geometry, the preprocessor's use of it, the way decoded masks,
boxes and label maps come back to the frame, its card and config keys, and the shipped foveated road
YOLACT."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from pipeline.errors import EdgeSegError
from pipeline.foveate import AxisWarp, Foveation, unwarping
from pipeline.modelcard import FoveaSpec, InputSpec, LoadedCard, find_card, load_card
from pipeline.preprocess import Preprocessor
from pipeline.train.instance_data import InstanceImage, foveated, mask_boxes
from pipeline.types import Instances, SemanticMap

ROAD_BAND = FoveaSpec(rows=(0.25, 0.6), cols=(0.15, 0.85), row_gain=1.0, col_gain=0.5)
SPEC = dict(width=320, height=176, color_order="RGB", mean=(120.0, 110.0, 100.0), std=(60.0, 55.0, 50.0))


def test_axis_warp_is_monotonic_and_magnifies_its_band():
    warp = AxisWarp.band(360, (0.25, 0.6), 1.0)
    assert warp.edges[0] == 0 and warp.edges[-1] == pytest.approx(360)
    assert np.all(np.diff(warp.edges) > 0)
    # inside the band each source pixel gets (1 + gain) over the mean density's share: 2 / 1.35
    middle = warp.edges[200] - warp.edges[160]
    assert middle / 40 == pytest.approx(2 / 1.35, rel=0.02)
    assert (warp.edges[40] - warp.edges[0]) / 40 == pytest.approx(1 / 1.35, rel=0.02)
    # warped -> source is the inverse of source -> warped
    src = np.array([0.0, 17.3, 150.0, 359.5, 360.0])
    assert warp.to_source(np.interp(src, np.arange(361.0), warp.edges)) == pytest.approx(src, abs=1e-9)


def test_zero_gain_is_the_plain_resize(rng):
    image = rng.integers(0, 256, (180, 300, 3), dtype=np.uint8)
    flat = Foveation(FoveaSpec(rows=(0.3, 0.6), row_gain=0.0))
    warped = flat.warp(image, (320, 176)).astype(int)
    # remap's fixed-point maps sample in 1/32 pixel steps: within a few levels of cv2.resize
    assert np.abs(warped - cv2.resize(image, (320, 176)).astype(int)).max() <= 4
    assert np.array_equal(flat.warp(image), image)


def test_preprocessor_samples_through_the_cards_warp(rng):
    image = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    plain, warped = Preprocessor(InputSpec(**SPEC)), Preprocessor(InputSpec(**SPEC, fovea=ROAD_BAND))
    expected = Foveation(ROAD_BAND).warp(image, (320, 176))
    assert np.array_equal(warped.resize(image), expected)
    assert not np.allclose(warped(image), plain(image))
    # a frame already at the input size is still warped (it is the frame, not the model's input)
    assert not np.array_equal(warped.resize(expected), expected)


def test_masks_and_boxes_come_back_to_the_frame():
    fovea = Foveation(ROAD_BAND)
    h, w = 360, 640
    ids = np.zeros((h, w), np.uint16)
    cv2.ellipse(ids, (320, 150), (40, 25), 0, 0, 360, 1, -1)  # in the band: magnified
    cv2.rectangle(ids, (20, 280), (140, 350), 2, -1)  # near road, left: squeezed
    cv2.rectangle(ids, (500, 120), (507, 139), 3, -1)  # a small pedestrian at the band's edge
    source = ids[None] == np.arange(1, 4, dtype=np.uint16)[:, None, None]
    warped_ids = fovea.warp(ids, interpolation=cv2.INTER_NEAREST)
    warped = warped_ids[None] == np.arange(1, 4, dtype=np.uint16)[:, None, None]
    assert warped[0].sum() > 1.4 * source[0].sum()  # the band gives the object more pixels
    assert warped[1].sum() < source[1].sum()
    decoded = Instances(classes=np.zeros(3, np.int32), scores=np.ones(3, np.float32), boxes=mask_boxes(warped),
                        masks=warped, class_names=("Car",))
    back = fovea.unwarp_instances(decoded)
    for got, want in zip(back.masks, source):
        assert (got & want).sum() / (got | want).sum() > 0.9
    assert np.abs(back.boxes - mask_boxes(source)).max() <= 1.5
    assert back.scores is decoded.scores
    empty = Instances.empty(h, w, ("Car",))
    assert fovea.unwarp_instances(empty) is empty


def test_a_label_map_comes_back_to_the_frame():
    fovea = Foveation(ROAD_BAND)
    labels = (np.arange(360)[:, None] // 30 + np.arange(640)[None] // 80).astype(np.uint8) % 5
    confidence = labels.astype(np.float32) / 4
    warped = fovea.warp(labels, interpolation=cv2.INTER_NEAREST)
    sem = SemanticMap(labels=warped, classes=tuple("abcde"), palette=np.zeros((5, 3), np.uint8),
                      confidence=fovea.warp(confidence, interpolation=cv2.INTER_NEAREST))
    back = fovea.unwarp_semantic(sem)
    assert (back.labels == labels).mean() > 0.98
    assert np.array_equal(back.confidence, back.labels.astype(np.float32) / 4)


def test_unwarping_wraps_a_decoder_only_where_the_card_warps():
    def decoder(outputs, sizes):
        return [Instances.empty(h, w, ("Car",)) for w, h in sizes]

    assert unwarping(decoder, InputSpec(**SPEC)) is decoder
    wrapped = unwarping(decoder, InputSpec(**SPEC, fovea=ROAD_BAND))
    assert wrapped is not decoder and wrapped({}, [(64, 48)])[0].masks.shape == (0, 48, 64)


def test_training_frames_go_through_the_same_warp(rng):
    fovea = Foveation(ROAD_BAND)
    ids = np.zeros((360, 640), np.uint16)
    ids[140:170, 300:340] = 1
    ids[300:340, 40:120] = 2
    sample = InstanceImage(image=rng.integers(0, 256, (360, 640, 3), dtype=np.uint8), ids=ids,
                           classes=np.array([0, 1]), ground=(ids > 0).astype(np.uint8))
    out = foveated(sample, fovea)
    assert np.array_equal(out.image, fovea.warp(sample.image))
    assert set(np.unique(out.ids)) == {0, 1, 2} and np.array_equal(out.classes, sample.classes)
    assert (out.ids == 1).sum() > 1.4 * (ids == 1).sum() and (out.ids == 2).sum() < (ids == 2).sum()
    assert np.array_equal(out.ground, (out.ids > 0).astype(np.uint8))


def test_bad_fovea_keys_are_one_line_errors(tmp_path):
    card = find_card("edgeseg_yolact_road")
    raw = yaml.safe_load(card.path.read_text())
    raw["input"]["fovea"] = {"rows": [0.6, 0.2], "row_gain": 1.0}
    shutil.copy(card.onnx_path, tmp_path / card.onnx_path.name)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(EdgeSegError, match=r"bad.yaml: key 'input.fovea': .*rows must be \[start, end\]"):
        load_card(tmp_path / "bad.yaml")
    raw["input"]["fovea"] = {"rows": [0.2, 0.6], "row_gain": -1}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(EdgeSegError, match=r"key 'input.fovea.row_gain'"):
        load_card(tmp_path / "bad.yaml")


def test_training_config_carries_the_warp_to_the_card(monkeypatch):
    tools = Path(__file__).resolve().parents[1] / "tools"
    monkeypatch.syspath_prepend(str(tools))
    pytest.importorskip("torch", reason="tools/train_yolact.py needs torch (the `train` extra)")
    import train_yolact as t

    path = tools / "train_configs" / "edgeseg_yolact_road_fovea.yaml"
    cfg = t.load_config(path)
    spec = t.input_spec(cfg, path, t.net_config(cfg, path).input_size)
    assert spec.fovea == ROAD_BAND
    cfg["input"] = {**cfg["input"], "fovea": {"rows": [0.2, 0.6], "row_gain": "wide"}}
    with pytest.raises(EdgeSegError, match=r"key 'input.fovea.row_gain'"):
        t.input_spec(cfg, path, (640, 352))


def test_the_shipped_foveated_model_finds_objects_where_they_are(monkeypatch):
    """The shipped foveated road YOLACT (trained through its card's warp) finds the synthetic world's objects,
    but only because the decoded masks are mapped back: left in warped coordinates, the same detections miss
    the ground truth."""
    pytest.importorskip("pycocotools", reason="mask AP is computed by pycocotools (the `eval` extra)")
    import pipeline.eval.cli as eval_cli
    from pipeline.eval.datasets import open_dataset

    card = find_card("edgeseg_yolact_road_fovea")
    assert card.card.input.fovea is not None
    dataset = open_dataset("synth:9000-9000", "val")
    mapped = eval_cli.evaluate_instances(card, dataset, threads=1, limit=6)
    monkeypatch.setattr(eval_cli, "unwarping", lambda decoder, spec: decoder)
    left_warped = eval_cli.evaluate_instances(card, dataset, threads=1, limit=6)
    assert mapped.mask_ap50 > 0.4
    assert mapped.mask_ap50 > left_warped.mask_ap50 + 0.2


def test_the_pipelines_decoders_map_back_where_the_card_warps():
    """The streaming pipeline's decoders (semantic and instance) are the card's decoders followed by the unwarp."""
    from pipeline import runtime
    from pipeline.decoders import SemanticDecoder, YolactDecoder
    from pipeline.stream.config import ModelConfig
    from pipeline.stream.models import make_decoder
    from pipeline.synth import SynthWorld

    image = SynthWorld(seed=9000).render(40).frame.image
    size = [(image.shape[1], image.shape[0])]
    fovea = Foveation(ROAD_BAND)
    for role, name, plain in (("instance", "edgeseg_yolact_road", YolactDecoder.from_card),
                              ("semantic", "edgeseg_road_s", SemanticDecoder)):
        shipped = find_card(name)
        card = LoadedCard(shipped.card.model_copy(update={"input": shipped.card.input.model_copy(
            update={"fovea": ROAD_BAND})}), shipped.path)
        outputs = runtime.load(card, threads=1).run(Preprocessor(card.card.input)(image))
        got = make_decoder(role, card, ModelConfig(model=name))(outputs, size)[0]
        want = fovea.unwarp(plain(card.card)(outputs, size)[0])
        if role == "instance":
            assert len(got) > 0 and np.array_equal(got.masks, want.masks) and np.array_equal(got.boxes, want.boxes)
        else:
            assert np.array_equal(got.labels, want.labels)
