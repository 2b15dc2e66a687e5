"""The road YOLACT's training configs: the four stages load, stage 1's overrides give the three-ratio net its
checkpoint warm-starts stage 2 from, stages 3 and 4 train the shipped net at 640x352, a config's ``base``
supplies what it does not state, the factorised candidate continues the shipped net at a larger input and its
distilled form learns from it too, and bad overrides, bases or distillation keys are one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the training tools need torch (the `train` extra)")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from train_yolact import checkpoint_of, distillation, input_spec, load_config, net_config  # noqa: E402

from pipeline.errors import EdgeSegError  # noqa: E402
from pipeline.modelcard import load_card  # noqa: E402
from pipeline.nets.yolact import config_by_name  # noqa: E402

CONFIGS = REPO / "tools" / "train_configs"


def test_four_stage_recipe():
    stage1, stage2, stage3, stage4 = (load_config(CONFIGS / f"{name}.yaml") for name in (
        "edgeseg_yolact_road_stage1", "edgeseg_yolact_road_stage2", "edgeseg_yolact_road_stage3",
        "edgeseg_yolact_road"))
    net1, net2, net3, net4 = (net_config(c, Path(f"s{k}")) for k, c in enumerate((stage1, stage2, stage3, stage4), 1))
    assert net1.aspect_ratios == (1.0, 0.5, 2.0) and net2.aspect_ratios == net3.aspect_ratios == (1.0, 0.5, 2.0, 0.25)
    assert net1.name == net2.name == net3.name
    assert net1.input_size == net2.input_size == (384, 384) and net1.anchor_norm == net2.anchor_norm == (384.0, 384.0)
    # the last two stages train the registered net, so the exported model is what config_by_name describes
    assert net3 == net4 == config_by_name(net3.name) and net3.input_size == (640, 352)
    assert net3.anchor_norm == (640.0, 352.0)
    for previous, stage in ((stage1, stage2), (stage2, stage3), (stage3, stage4)):
        assert stage["init"] == f"runs/{previous['name']}/best.pt"
    assert stage2["loss"] == stage3["loss"] == stage4["loss"] == {"assign": "atss", "soft_masks": True}
    assert not stage1.get("loss")
    # stage 4 is stage 3 continued: only the schedule changes
    changed = {k for k in stage3.keys() | stage4.keys() if stage3.get(k) != stage4.get(k)}
    assert changed == {"name", "init", "epochs", "lr"} and stage4["lr"] < stage3["lr"]


def test_separable_candidate_continues_the_shipped_net_with_only_the_net_and_schedule_changed():
    stage4 = load_config(CONFIGS / "edgeseg_yolact_road.yaml")
    candidate = load_config(CONFIGS / "edgeseg_yolact_road_sep.yaml")
    net4, net = net_config(stage4, Path("s4")), net_config(candidate, Path("sep"))
    assert net.separable and not net4.separable
    assert net.input_size == (896, 496) and net.anchor_norm == (896.0, 496.0)
    assert net.anchor_scales == net4.anchor_scales and net.aspect_ratios == net4.aspect_ratios  # anchors in pixels
    card = load_card(REPO / candidate["init"]).card  # stage 4's best as shipped: no earlier run needed
    assert card.name == stage4["name"] and card.training.config == f"tools/train_configs/{stage4['name']}.yaml"
    changed = {k for k in stage4.keys() | candidate.keys() if stage4.get(k) != candidate.get(k)}
    assert changed == {"name", "init", "net_overrides", "factorise", "epochs", "lr"}
    assert candidate["factorise"] == {"images": 64, "steps": 300}


def test_distilled_candidate_is_the_separable_run_with_the_shipped_net_as_its_teacher():
    sep = load_config(CONFIGS / "edgeseg_yolact_road_sep.yaml")
    kd = load_config(CONFIGS / "edgeseg_yolact_road_sep_kd.yaml")
    assert net_config(kd, Path("kd")) == net_config(sep, Path("sep"))
    assert kd["distill"]["teacher"] == sep["init"]
    changed = {k for k in sep.keys() | kd.keys() if sep.get(k) != kd.get(k)}
    assert changed == {"name", "distill"}


def test_dont_care_candidate_is_the_foveated_recipe_with_ignore_rest():
    fovea = load_config(CONFIGS / "edgeseg_yolact_road_fovea.yaml")
    candidate = load_config(CONFIGS / "edgeseg_yolact_road_fovea_ign.yaml")
    changed = {k for k in fovea.keys() | candidate.keys() if fovea.get(k) != candidate.get(k)}
    assert changed == {"name", "instances"}
    assert candidate["instances"] == fovea["instances"] | {"ignore_rest": True}  # the scored objects are the same


def test_strong_warp_candidate_is_the_synthetic_mix_through_a_stronger_warp():
    syn = load_config(CONFIGS / "edgeseg_yolact_road_fovea_syn.yaml")
    candidate = load_config(CONFIGS / "edgeseg_yolact_road_fovea_strong.yaml")
    changed = {k for k in syn.keys() | candidate.keys() if syn.get(k) != candidate.get(k)}
    assert changed == {"name", "input", "epochs", "lr"}
    warp, shipped = candidate["input"]["fovea"], syn["input"]["fovea"]
    assert warp["rows"] == shipped["rows"] and warp["cols"] == shipped["cols"]  # the same bands, magnified more
    assert warp["row_gain"] > shipped["row_gain"] and warp["col_gain"] > shipped["col_gain"]
    assert {k: v for k, v in candidate["input"].items() if k != "fovea"} == \
        {k: v for k, v in syn["input"].items() if k != "fovea"}


def test_long_synthetic_mix_run_is_the_synthetic_mix_run_trained_longer():
    syn = load_config(CONFIGS / "edgeseg_yolact_road_fovea_syn.yaml")
    candidate = load_config(CONFIGS / "edgeseg_yolact_road_fovea_syn12.yaml")
    assert {k for k in syn.keys() | candidate.keys() if syn.get(k) != candidate.get(k)} == {"name", "epochs"}
    assert (syn["epochs"], candidate["epochs"]) == (5, 12)


def test_a_bad_ignore_rest_is_one_line(tmp_path):
    (tmp_path / "x.yaml").write_text(f"base: {CONFIGS / 'edgeseg_yolact_road_fovea_ign.yaml'}\n"
                                     "instances: {camvid_min_area: 50, synth_min_area: 30, synth_min_visible: 0.15, "
                                     "ignore_rest: 'yes'}\n")
    with pytest.raises(EdgeSegError) as e:
        load_config(tmp_path / "x.yaml")
    assert str(e.value) == f"{tmp_path / 'x.yaml'}: key 'instances.ignore_rest': true or false, not 'yes'"


@pytest.mark.parametrize("distill, message", [
    ("runs/x.pt", "key 'distill': a mapping ({teacher: CHECKPOINT, ...}), not 'runs/x.pt'"),
    ({"conf": 1.0}, "key 'distill.teacher' is missing"),
    ({"teacher": "runs/x.pt", "temperature": 2}, "key 'distill.temperature': not one of teacher, active, box, "),
    ({"teacher": "runs/x.pt", "conf": "1"}, "key 'distill.conf': a number, not '1'"),
])
def test_bad_distill_keys_are_one_line(distill, message):
    cfg = load_config(CONFIGS / "edgeseg_yolact_road_sep_kd.yaml") | {"distill": distill}
    net = net_config(cfg, Path("x.yaml"))
    with pytest.raises(EdgeSegError) as e:
        distillation(cfg, Path("x.yaml"), net, None, Path("."), torch.device("cpu"), 1)
    assert str(e.value).startswith(f"x.yaml: {message}") and "\n" not in str(e.value)


def test_a_teacher_of_other_inputs_or_of_factorised_layers_is_refused_in_one_line(tmp_path):
    from dataclasses import asdict, replace

    from pipeline.nets.yolact import Yolact

    cfg = load_config(CONFIGS / "edgeseg_yolact_road_sep_kd.yaml")
    net = replace(net_config(cfg, Path("x.yaml")), input_size=(128, 96), anchor_norm=(128.0, 96.0))
    spec = input_spec(cfg, Path("x.yaml"), net.input_size)
    other = tmp_path / "bgr.pt"
    torch.save({"model": {}, "net": asdict(net), "epoch": 0,
                "input": spec.model_copy(update={"color_order": "BGR"}).model_dump()}, other)
    factorised = tmp_path / "sep.pt"
    torch.save({"model": Yolact(net).state_dict(), "net": asdict(net), "epoch": 0, "input": spec.model_dump()},
               factorised)
    for path, message in ((other, "trained on BGR inputs normalised by mean"),
                          (factorised, "not a teacher for this net: the checkpoint lacks")):
        cfg["distill"] = {"teacher": str(path)}
        with pytest.raises(EdgeSegError) as e:
            distillation(cfg, Path("x.yaml"), net, spec, tmp_path, torch.device("cpu"), 1)
        assert str(e.value).startswith(f"{path}: {message}") and "\n" not in str(e.value)


def test_a_checkpoint_of_another_net_is_refused_in_one_line(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"model": {}, "net": {"name": "yolact_base"}, "epoch": 0}, path)
    cfg = load_config(CONFIGS / "edgeseg_yolact_road.yaml")
    net = net_config(cfg, Path("x.yaml"))
    with pytest.raises(EdgeSegError) as e:
        checkpoint_of(str(path), net, input_spec(cfg, Path("x.yaml"), net.input_size))
    assert str(e.value) == f"{path}: a checkpoint of net yolact_base, the config trains edgeseg_yolact_road"


def test_an_init_of_other_inputs_is_refused_in_one_line():
    cfg = load_config(CONFIGS / "edgeseg_yolact_road.yaml")
    net = net_config(cfg, Path("x.yaml"))
    spec = input_spec(cfg, Path("x.yaml"), net.input_size).model_copy(update={"mean": (0.0, 0.0, 0.0)})
    with pytest.raises(EdgeSegError) as e:
        checkpoint_of("engines/edgeseg_yolact_road.yaml", net, spec)  # the shipped card, read back
    assert str(e.value) == ("engines/edgeseg_yolact_road.yaml: trained on RGB inputs normalised by mean [123.675, "
                            "116.28, 103.53], std [58.395, 57.12, 57.375]; the config normalises them otherwise")


@pytest.mark.parametrize("overrides, message", [
    ({"colour": 1}, "key 'net_overrides.colour': not a YOLACT config field"),
    ({"anchor_scales": [1.0, 2.0]}, "key 'net_overrides': config edgeseg_yolact_road: 2 anchor scales for 5 FPN levels"),
])
def test_bad_overrides_are_one_line(overrides, message):
    cfg = load_config(CONFIGS / "edgeseg_yolact_road.yaml") | {"net_overrides": overrides}
    with pytest.raises(EdgeSegError) as e:
        net_config(cfg, Path("x.yaml"))
    assert str(e.value) == f"x.yaml: {message}"


def test_base_supplies_the_keys_a_config_leaves_out_and_given_keys_replace_whole_values(tmp_path):
    (tmp_path / "first.yaml").write_text((CONFIGS / "edgeseg_yolact_road_stage1.yaml").read_text())
    (tmp_path / "second.yaml").write_text("base: first.yaml\nname: second\n"
                                          "val: {every: 1, synth_seeds: [9000, 9000]}\n")
    (tmp_path / "third.yaml").write_text("base: second.yaml\nname: third\naugment: {scale: [1, 1], aspect: 1, "
                                         "flip: 0, min_box: 2}\n")
    first, third = load_config(tmp_path / "first.yaml"), load_config(tmp_path / "third.yaml")
    assert third["name"] == "third" and "base" not in third
    assert third["val"] == {"every": 1, "synth_seeds": [9000, 9000]}  # from second, replacing first's
    assert third["augment"] == {"scale": [1, 1], "aspect": 1, "flip": 0, "min_box": 2}
    assert {k: v for k, v in third.items() if k not in ("name", "val", "augment")} == {
        k: v for k, v in first.items() if k not in ("name", "val", "augment")}


@pytest.mark.parametrize("files, message", [
    ({"a.yaml": "base: missing.yaml\n"}, "missing.yaml: training config not found"),
    ({"a.yaml": "base: b.yaml\n", "b.yaml": "base: a.yaml\n"}, "a.yaml: key 'base': the configs' bases form a loop"),
    ({"a.yaml": "base: [b.yaml]\n"}, "a.yaml: key 'base': a config file name, not ['b.yaml']"),
])
def test_bad_bases_are_one_line(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(EdgeSegError) as e:
        load_config(tmp_path / "a.yaml")
    assert str(e.value) == f"{tmp_path}/{message}"


def test_cuda_without_a_gpu_is_one_line():
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = subprocess.run([sys.executable, str(REPO / "tools" / "train_yolact.py"),
                             str(CONFIGS / "edgeseg_yolact_road.yaml"), "--device", "cuda"],
                            cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "train_yolact: --device cuda, but torch finds no CUDA GPU on this machine"
