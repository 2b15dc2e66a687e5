"""`edgeseg eval synth:SEEDS --panoptic CONFIG`: a pipeline config's fused output scored against the synthetic
world's exact panoptic ground truth, with the shipped semantic model and a real (untrained) road YOLACT.

PQ arithmetic itself is tested on hand cases in test_panoptic.py; here: that the config's models and fusion
are what gets scored, the JSON, and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_eval_camvid import make_camvid

from pipeline.cli import main
from pipeline.errors import EdgeSegError
from pipeline.eval.datasets import open_dataset
from pipeline.eval.panoptic_run import evaluate_panoptic
from pipeline.modelcard import PanopticMetrics
from pipeline.panoptic import CAMVID_STUFF

SHIPPED_SEMANTIC = Path(__file__).resolve().parents[1] / "engines" / "edgeseg_road_s.yaml"


def _config(tmp_path: Path, instance_card: Path, **panoptic: object) -> Path:
    path = tmp_path / "panoptic.yaml"
    path.write_text(yaml.safe_dump({
        "source": "synth://?seed=1",
        "models": {"semantic": {"model": str(SHIPPED_SEMANTIC), "threads": 1},
                   "instance": {"model": str(instance_card), "threads": 1}},
        "panoptic": panoptic,
    }))
    return path


def test_stuff_quality_comes_from_the_trained_semantic_model(tmp_path, road_yolact_card):
    config = _config(tmp_path, road_yolact_card.path)
    m = evaluate_panoptic(str(config), open_dataset("synth:9000", "val"), threads=1, limit=3)
    assert m.images == 3
    # The shipped semantic net is trained (synthetic val mIoU above 80 %): its road is a near-perfect segment.
    assert m.per_class_pq["Road"] > 0.8
    assert m.pq_stuff > 0.4
    # Random YOLACT weights score near 0.5 at most, under the fusion's 0.5 threshold: no thing segments, so
    # every ground-truth object is a miss and thing PQ is exactly zero.
    assert m.pq_things == 0.0
    stuff = [m.per_class_pq[c] for c in CAMVID_STUFF if c in m.per_class_pq]
    things = [m.per_class_pq[c] for c in ("Car", "Pedestrian", "Bicyclist") if c in m.per_class_pq]
    assert m.pq == pytest.approx(sum(stuff + things) / len(stuff + things))
    assert m.command == f"edgeseg eval synth:9000 --panoptic {config} --limit 3"


def test_fusion_settings_of_the_config_are_the_ones_scored(tmp_path, road_yolact_card):
    """Declaring Road not stuff makes it void in every prediction: its PQ becomes 0 (all misses)."""
    stuff = [c for c in CAMVID_STUFF if c != "Road"]
    config = _config(tmp_path, road_yolact_card.path, stuff=stuff)
    m = evaluate_panoptic(str(config), open_dataset("synth:9000", "val"), threads=1, limit=2)
    assert m.per_class_pq["Road"] == 0.0


def test_cli_prints_table_and_writes_json(tmp_path, road_yolact_card, capsys):
    config = _config(tmp_path, road_yolact_card.path)
    out = tmp_path / "pq.json"
    assert main(["eval", "synth:9001", "--panoptic", str(config), "--limit", "2", "--threads", "1",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "PQ stuff" in printed and "2 images" in printed
    metrics = PanopticMetrics.model_validate(json.loads(out.read_text()))
    assert metrics.dataset == "synth:9001" and metrics.images == 2


def test_errors_name_the_problem(tmp_path, road_yolact_card, tiny_card, rng):
    make_camvid(tmp_path / "camvid", rng)
    with pytest.raises(EdgeSegError, match="only for synth:SEEDS"):
        evaluate_panoptic(str(_config(tmp_path, road_yolact_card.path)), open_dataset(f"camvid:{tmp_path / 'camvid'}", "val"))
    semantic_only = tmp_path / "semantic_only.yaml"
    semantic_only.write_text(yaml.safe_dump({"source": "synth://", "models": {"semantic": {"model": str(tiny_card.path)}}}))
    with pytest.raises(EdgeSegError, match=r"semantic_only.yaml: --panoptic needs .*models.instance"):
        evaluate_panoptic(str(semantic_only), open_dataset("synth:9000", "val"))
