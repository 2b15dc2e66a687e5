"""A semantic and an instance model in one pipeline, fused to panoptic: every output written and read back.

The instance model is our road YOLACT architecture with random weights, really exported to ONNX and run
by ONNX Runtime; with untrained weights its scores sit near uniform, so the test lowers the score
thresholds to get detections through every stage."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest
import yaml

from pipeline.stream.pipeline import Pipeline


def test_semantic_instance_and_panoptic_in_one_pipeline(tmp_path, tiny_card, road_yolact_card):
    out = tmp_path / "out"
    config = tmp_path / "panoptic.yaml"
    config.write_text(yaml.safe_dump({
        "source": {"uri": "synth://?seed=3&size=320x180&frames=6", "id": "cam"},
        "models": {"semantic": {"model": str(tiny_card.path), "threads": 1},
                   "instance": {"model": str(road_yolact_card.path), "threads": 1, "threshold": 0.0}},
        "panoptic": {"score_threshold": 0.0, "min_visible": 0.0},
        "sinks": {"video": {}, "jsonl": {}, "masks": {}}, "out": str(out)}))
    pipeline = Pipeline.from_config(config)
    results = list(pipeline.results())
    assert len(results) == 6
    for r in results:
        assert r.semantic.labels.shape == (180, 320)
        assert len(r.instances) > 0 and r.instances.masks.shape[1:] == (180, 320)
        assert set(r.instances.class_names) == {"Car", "Pedestrian", "Bicyclist"}
        assert r.panoptic is not None and r.panoptic.ids.shape == (180, 320)
        assert {"inference", "decode", "track", "analytics", "panoptic"} <= set(r.timings_ms)
        assert r.instances.track_ids is not None and r.analytics is not None
        ids = {s.id for s in r.panoptic.segments}
        assert set(np.unique(r.panoptic.ids)) - {0} == ids  # every painted id is a listed segment
        assert any(s.isthing for s in r.panoptic.segments)
    lines = [json.loads(line) for line in (out / "cam.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and all(line["instances"] and line["panoptic"] for line in lines)
    assert lines[0]["counts"] == results[0].instances.counts
    assert all("track_id" in inst for line in lines for inst in line["instances"])
    assert lines[-1]["analytics"]["unique"] == results[-1].analytics.unique
    panoptic_png = cv2.imread(str(out / "masks" / "cam_000000_panoptic.png"), cv2.IMREAD_COLOR)[:, :, ::-1]
    rgb = panoptic_png.astype(np.int64)
    encoded = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
    assert np.array_equal(encoded, results[0].panoptic.ids)
    assert (out / "masks" / "cam_000000_instanceIds.png").exists()
    with av.open(str(out / "cam.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 6


def test_instance_model_every_other_frame(tmp_path, road_yolact_card):
    """``every: 2``: the instance model runs on even frames; odd frames get the tracker's predictions of
    the confirmed tracks, so every frame has instances, and the odd ones only tracked objects."""
    config = tmp_path / "every.yaml"
    config.write_text(yaml.safe_dump({
        "source": {"uri": "synth://?seed=3&size=320x180&frames=8", "id": "cam"},
        "models": {"instance": {"model": str(road_yolact_card.path), "threads": 1, "threshold": 0.0, "every": 2}},
        # random weights: scores near 0.26, so the tracker's thresholds come down with them
        "tracker": {"high_score": 0.25, "new_track_score": 0.25, "low_score": 0.1},
        "out": str(tmp_path / "out")}))
    results = list(Pipeline.from_config(config).results())
    assert len(results) == 8
    for r in results:
        assert r.instances is not None and r.instances.track_ids is not None
        if r.frame.index % 2:
            assert "inference" not in r.timings_ms or r.timings_ms["inference"] < 5  # no model call
            assert (r.instances.track_ids >= 0).all()
    confirmed_even = {int(i) for r in results if r.frame.index % 2 == 0 for i in r.instances.track_ids if i >= 0}
    predicted_odd = {int(i) for r in results if r.frame.index % 2 for i in r.instances.track_ids}
    assert predicted_odd and predicted_odd <= confirmed_even
