"""`edgeseg eval` on an instance model card: the real ONNX export of a randomly initialised road YOLACT, run
through ONNX Runtime, the YOLACT decoder and pycocotools on synthetic and CamVid-layout instances.

Scoring itself (perfect predictions give AP 1, hand-worked PR curves) is tested in test_eval_instances.py;
here: the dispatch by task, the ground-truth rules, the JSON a card embeds and the one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from test_eval_camvid import make_camvid

from pipeline.cli import main
from pipeline.errors import EdgeSegError
from pipeline import runtime
from pipeline.eval.cli import InstanceRules, evaluate_decoder_variants, evaluate_instances
from pipeline.eval.datasets import CamVidDataset, open_dataset
from pipeline.eval.plots import PR_PANEL
from pipeline.labels import CAMVID
from pipeline.modelcard import (InputSpec, InstanceMetrics, LoadedCard, ModelCard, OutputSpec, PostprocessSpec,
                                find_card, load_card, save_card)
from pipeline.train.instance_data import THING_CLASSES, synth_validation

pytest.importorskip("pycocotools", reason="mask AP is computed by pycocotools (the `eval` extra)")
TRAIN_CONFIGS = Path(__file__).resolve().parents[1] / "tools" / "train_configs"


@pytest.fixture(scope="module")
def road_card(tmp_path_factory) -> LoadedCard:
    """A randomly initialised edgeseg_yolact_road net exported to ONNX with an instance card."""
    torch = pytest.importorskip("torch", reason="torch (the `train` extra) builds the YOLACT net")
    from pipeline.nets.yolact import Yolact, config_by_name
    from pipeline.nets.yolact_export import export_yolact_onnx

    torch.manual_seed(0)
    model = Yolact(config_by_name("edgeseg_yolact_road"))
    width, height = model.cfg.input_size
    spec = InputSpec(width=width, height=height, color_order="RGB", mean=(123.675, 116.28, 103.53),
                     std=(58.395, 57.12, 57.375))
    out = tmp_path_factory.mktemp("road_yolact")
    export_yolact_onnx(model, out / "road.onnx", spec)
    card = ModelCard(name="road", task="instance", file="road.onnx", architecture="YOLACT (random weights)",
                     classes=list(THING_CLASSES), palette=[CAMVID.palette[CAMVID.index(c)] for c in THING_CLASSES],
                     input=spec, output=OutputSpec(name="conf", kind="yolact"), postprocess=PostprocessSpec(),
                     params=model.inference_parameters(), gflops=1.0, licence="test")
    return load_card(save_card(card, out / "road.yaml"))


@pytest.mark.parametrize("stage", ["edgeseg_yolact_road_stage1", "edgeseg_yolact_road_stage2",
                                   "edgeseg_yolact_road_stage3", "edgeseg_yolact_road"])
def test_rule_defaults_are_the_training_configs(stage, monkeypatch):
    """`edgeseg eval` must count as instances what training validation counts (the card's commands rely on it);
    read through the trainer's loader, which applies a config's ``base``."""
    pytest.importorskip("torch", reason="the training tools need torch (the `train` extra)")
    monkeypatch.syspath_prepend(str(TRAIN_CONFIGS.parent))  # tools/
    from train_yolact import load_config
    assert InstanceRules().__dict__ == load_config(TRAIN_CONFIGS / f"{stage}.yaml")["instances"]


def test_cli_on_synthetic_seeds_writes_instance_metrics(tmp_path, road_card, capsys):
    out = tmp_path / "m.json"
    argv = ["eval", "synth:9000-9004", "--model", str(road_card.path), "--limit", "3", "--json", str(out),
            "--threads", "1", "--plot", str(tmp_path / "plots" / "pr.png")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    picture = cv2.imread(str(tmp_path / "plots" / "pr.png"))  # precision-recall per class and per size
    assert picture.shape == (30 + PR_PANEL[1], 2 * PR_PANEL[0], 3) and "plot written to" in printed
    assert "mask AP" in printed and "Pedestrian" in printed
    m = InstanceMetrics.model_validate(json.loads(out.read_text()))
    expected = synth_validation(range(9000, 9001), 30, 0.15)[:3]  # training validation's ground truth
    assert (m.dataset, m.images, m.resolution) == ("synth:9000-9004", 3, "640x352")
    assert m.instances == sum(len(f.classes) for f in expected) > 0
    # per class and per COCO size, the counts add up to the same objects
    assert sum(m.instances_per_class.values()) == sum(m.instances_by_size.values()) == m.instances
    areas = [int(f.masks().sum(axis=(1, 2))[i]) for f in expected for i in range(len(f.classes))]
    assert m.instances_by_size["small"] == sum(a < 32 ** 2 for a in areas)
    assert "small (< 32x32 px)" in printed
    assert 0 <= m.mask_ap <= m.mask_ap50 <= 1
    assert set(m.per_class_mask_ap) <= set(THING_CLASSES) and all(0 <= v <= 1 for v in m.per_class_mask_ap.values())
    assert m.command == f"edgeseg eval synth:9000-9004 --model {road_card.path} --limit 3"
    # the JSON is what a card embeds under metrics
    card = road_card.card.model_copy(update={"metrics": {"synth_val": m}})
    shutil.copy(road_card.onnx_path, tmp_path / road_card.card.file)
    assert load_card(save_card(card, tmp_path / "with.yaml")).card.metrics["synth_val"] == m


def test_decoder_variants_score_one_model_pass_many_ways(monkeypatch):
    """The shipped road YOLACT on 3 held-out synthetic frames: each variant overrides the card's
    postprocess, the model runs once per frame for all of them, and the card's own settings ({})
    score exactly what `edgeseg eval` scores."""
    card = find_card("edgeseg_yolact_road")
    runs = []
    load = runtime.load

    def counting_load(*args, **kwargs):
        session = load(*args, **kwargs)
        run = session.run
        session.run = lambda *a: runs.append(1) or run(*a)
        return session

    monkeypatch.setattr(runtime, "load", counting_load)
    dataset = open_dataset("synth:9000-9004", "val")
    other_crop = "prototype" if card.card.detection.mask_crop == "box" else "box"
    own, high, cropped = evaluate_decoder_variants(card, dataset, [{}, {"mask_threshold": 0.95},
                                                                   {"mask_crop": other_crop}], threads=1, limit=3)
    assert len(runs) == 3
    assert own == evaluate_instances(card, dataset, threads=1, limit=3)
    assert high.mask_ap50 < own.mask_ap50  # masks cut at 0.95 lose most of their pixels
    assert cropped.mask_ap != own.mask_ap and own.instances == high.instances == cropped.instances > 0


def test_camvid_instances_are_connected_components(tmp_path, rng, road_card):
    """Blocky random labels: the ground truth is every Car/Pedestrian/Bicyclist component of >= 50 pixels."""
    import cv2

    root = make_camvid(tmp_path / "camvid", rng, count=2, size=(240, 180))
    m = evaluate_instances(road_card, open_dataset(f"camvid:{root}", "val"), threads=1)
    count = 0
    for p in sorted((root / "valannot").iterdir()):
        labels = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        for k in (8, 9, 10):
            _, _, stats, _ = cv2.connectedComponentsWithStats((labels == k).astype(np.uint8), connectivity=8)
            count += int((stats[1:, cv2.CC_STAT_AREA] >= 50).sum())
    assert (m.dataset, m.images, m.instances) == ("camvid:val", 2, count)
    assert 0 <= m.mask_ap <= m.mask_ap50 <= 1


def test_cli_on_real_camvid_val(shared_dir, road_card, tmp_path):
    out = tmp_path / "m.json"
    root = shared_dir / "data" / "camvid"
    assert main(["eval", f"camvid:{root}", "--split", "val", "--model", str(road_card.path), "--limit", "2",
                 "--json", str(out)]) == 0
    m = InstanceMetrics.model_validate(json.loads(out.read_text()))
    assert (m.dataset, m.images) == ("camvid:val", 2) and m.instances > 0
    assert m.command == f"edgeseg eval camvid:{root} --split val --model {road_card.path} --limit 2"


def test_dataset_kind_without_instance_ground_truth_is_one_line(tmp_path, rng, road_card):
    """A labelled dataset kind with no instance rules (camvid and synth both have them): a reader of another
    kind, over a real CamVid-layout folder, is refused before the model loads."""
    class OtherKind(CamVidDataset):
        kind = "cityscapes"

    with pytest.raises(EdgeSegError) as err:
        evaluate_instances(road_card, OtherKind(make_camvid(tmp_path, rng, count=1), "val"))
    message = str(err.value)
    assert "\n" not in message and "cityscapes:val" in message and "no instance ground truth" in message


def test_cli_refuses_a_model_without_the_ground_truth_classes(tmp_path, road_card, capsys):
    raw = yaml.safe_load(road_card.path.read_text())
    raw["classes"] = ["car", "person", "bicycle"]  # COCO naming: nothing would ever match
    (tmp_path / "coco.yaml").write_text(yaml.safe_dump(raw))
    shutil.copy(road_card.onnx_path, tmp_path / road_card.card.file)
    assert main(["eval", "synth:9000", "--model", str(tmp_path / "coco.yaml"), "--limit", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "coco.yaml" in err and "Car, Pedestrian, Bicyclist" in err


def test_cli_mask_overrides_are_scored_and_recorded(tmp_path):
    """--mask-threshold / --mask-crop / --maskness-power replace the card's postprocess for one evaluation (the README's
    "official decode" rows), and the JSON's command repeats them so the numbers can be reproduced."""
    card = find_card("edgeseg_yolact_road")
    out = tmp_path / "m.json"
    argv = ["eval", "synth:9000-9004", "--model", "edgeseg_yolact_road", "--limit", "3", "--threads", "1",
            "--mask-threshold", "0.5", "--mask-crop", "prototype", "--maskness-power", "0", "--json", str(out)]
    assert main(argv) == 0
    m = InstanceMetrics.model_validate(json.loads(out.read_text()))
    official = {"mask_threshold": 0.5, "mask_crop": "prototype", "maskness_power": 0.0}
    expected = evaluate_decoder_variants(card, open_dataset("synth:9000-9004", "val"), [official], threads=1,
                                         limit=3)[0]
    assert m == expected
    assert m.command == ("edgeseg eval synth:9000-9004 --model edgeseg_yolact_road --mask-threshold 0.5 "
                         "--mask-crop prototype --maskness-power 0.0 --limit 3")


@pytest.mark.parametrize("argv, message", [
    (["--mask-threshold", "1.5"], "--mask-threshold must be between 0 and 1, got 1.5"),
    (["--mask-crop", "box", "--model", "edgeseg_road_s"],
     "--mask-threshold, --mask-crop and --maskness-power apply to an instance model, not to edgeseg_road_s "
     "(semantic)"),
    (["--maskness-power", "-1"], "--maskness-power must be between 0 and 4, got -1.0"),
    (["--maskness-power", "1", "--model", "edgeseg_road_s"], "apply to an instance model, not to edgeseg_road_s"),
    (["--mask-threshold", "0.4", "--panoptic", "demo"], "apply to an instance model, not to --panoptic"),
    (["--plot", "p.png", "--panoptic", "demo"], "--plot draws a semantic or an instance model's evaluation"),
    (["--plot", "plot.txt"], "--plot plot.txt: not an image file name OpenCV can write"),
])
def test_cli_mask_overrides_refused_where_they_mean_nothing(argv, message, capsys):
    assert main(["eval", "synth:9000", "--limit", "1", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err
