"""tools/export_yolact.py end to end: a randomly initialised road YOLACT saved in the trainer's checkpoint
format is exported, its card written, evaluated (a few images) and timed, as the shipped model will be."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from pipeline import runtime
from pipeline.decoders.yolact import YolactDecoder
from pipeline.labels import CAMVID
from pipeline.modelcard import InstanceMetrics, load_card
from pipeline.preprocess import Preprocessor
from pipeline.synth import SynthWorld

torch = pytest.importorskip("torch", reason="torch (the `train` extra) loads the checkpoint and exports")
pytest.importorskip("pycocotools", reason="mask AP is computed by pycocotools (the `eval` extra)")
REPO = Path(__file__).resolve().parents[1]
CONFIG = "tools/train_configs/edgeseg_yolact_road.yaml"


def export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / "export_yolact.py"), CONFIG, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    """What tools/train_yolact.py writes as best.pt, with random weights, after its 3rd epoch."""
    from pipeline.nets.yolact import Yolact, config_by_name

    torch.manual_seed(0)
    cfg = config_by_name("edgeseg_yolact_road")
    path = tmp_path / "best.pt"
    torch.save({"model": Yolact(cfg).state_dict(), "net": asdict(cfg), "epoch": 2, "val": {}, "input": {}}, path)
    return path


@pytest.mark.slow
def test_export_writes_a_measured_card_that_runs(shared_dir, checkpoint, tmp_path):
    out = tmp_path / "engines"
    done = export("--checkpoint", str(checkpoint), "--out", str(out), "--camvid", str(shared_dir / "data" / "camvid"),
                  "--limit", "2", "--latency-runs", "3")
    assert done.returncode == 0, done.stderr
    loaded = load_card(out / "edgeseg_yolact_road.yaml")  # validates
    card = loaded.card
    assert (card.task, card.classes) == ("instance", ["Car", "Pedestrian", "Bicyclist"])
    assert card.palette == [CAMVID.palette[8], CAMVID.palette[9], CAMVID.palette[10]]
    assert (card.input.width, card.input.height, card.input.color_order) == (640, 352, "RGB")
    assert card.training.epochs == 3 and card.training.seed == 0 and card.training.config == CONFIG
    # four stages, each from the previous one's best.pt, then the export
    assert card.training.command.split(" && ") == [
        *(f".venv/bin/python tools/train_yolact.py tools/train_configs/edgeseg_yolact_road_stage{k}.yaml"
          for k in (1, 2, 3)),
        f".venv/bin/python tools/train_yolact.py {CONFIG}", f".venv/bin/python tools/export_yolact.py {CONFIG}"]
    assert any("research use" in d.licence for d in card.training.data)
    # mask post-processing calibrated on seeds that are neither trained nor validated on, before the metrics
    assert "mask calibration on synth:8000-8004" in done.stdout
    assert card.detection.mask_threshold in (0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
    assert card.detection.mask_crop in ("prototype", "box") and card.detection.score_threshold == 0.3
    assert [d.role for d in card.training.data].count("calibration") == 1
    assert set(card.metrics) == {"camvid_val", "synth_val"}
    for key, dataset in (("camvid_val", "camvid:val"), ("synth_val", "synth:9000-9004")):
        m = card.metrics[key]
        assert isinstance(m, InstanceMetrics) and m.dataset == dataset and m.images == 2 and m.instances > 0
        assert 0 <= m.mask_ap <= 1 and 0 <= m.mask_ap50 <= 1
    assert card.metrics["camvid_val"].command.startswith("edgeseg eval camvid:../shared/data/camvid --split val")
    assert [lat.threads for lat in card.latency] == [1, 2] and all(lat.median_ms > 0 for lat in card.latency)
    # the exported file runs through the runtime and decoder the pipeline uses
    image = SynthWorld(seed=9000, size=(640, 360)).render(0).frame.image
    outputs = runtime.load(loaded, threads=1).run(Preprocessor(card.input)(image))
    instances = YolactDecoder.from_card(card, score_threshold=0.0)(outputs, [(640, 360)])[0]
    assert instances.masks.shape[1:] == (360, 640) and len(instances) > 0
    assert np.all((instances.scores >= 0) & (instances.scores <= 1))


def test_missing_checkpoint_is_one_line(tmp_path):
    done = export("--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path))
    assert done.returncode != 0
    err = done.stderr.strip()
    assert "\n" not in err and "none.pt: checkpoint not found" in err and not list(tmp_path.iterdir())


def test_checkpoint_of_another_net_is_one_line(tmp_path, checkpoint):
    ckpt = torch.load(checkpoint, weights_only=False)
    ckpt["net"]["name"] = "yolact_base"
    torch.save(ckpt, checkpoint)
    done = export("--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"))
    assert done.returncode != 0
    err = done.stderr.strip()
    assert "\n" not in err and "net yolact_base" in err and "edgeseg_yolact_road" in err


def test_file_that_is_not_a_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("garbage\n")
    done = export("--checkpoint", str(bad), "--out", str(tmp_path / "out"))
    assert done.returncode != 0
    err = done.stderr.strip()
    assert "\n" not in err and "bad.pt: cannot be read as a torch checkpoint" in err
