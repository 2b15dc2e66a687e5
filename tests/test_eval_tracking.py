"""tools/eval_tracking.py: the metric code is validated against published numbers, TrackEval's KITTI layout
scores ground truth as perfect, and a real run compares the trackers on MOT15 TUD."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.tracking.files import read_kitti, read_mot

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "eval_tracking.py"


def _tool():
    """The tool as a module (tools/ is no package); registered first, as its dataclasses need."""
    if "eval_tracking" not in sys.modules:
        spec = importlib.util.spec_from_file_location("eval_tracking", TOOL)
        module = importlib.util.module_from_spec(spec)
        sys.modules["eval_tracking"] = module
        spec.loader.exec_module(module)
    return sys.modules["eval_tracking"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), "--no-progress", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_box_iou_on_hand_boxes():
    iou = _tool().box_iou(np.array([[0, 0, 10, 10], [0, 0, 0, 5]], np.float32),
                          np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]], np.float32))
    np.testing.assert_allclose(iou, [[50 / 150, 1.0, 0.0], [0.0, 0.0, 0.0]])


def test_motmetrics_reproduces_its_published_tud_scores(shared_dir, tmp_path):
    """py-motmetrics' own test numbers on its reference tracker output (shared/README.md), through our readers
    and our IoU; TrackEval's MOTA and IDF1 on the same files agree."""
    pytest.importorskip("motmetrics", reason="the metric check needs py-motmetrics")
    pytest.importorskip("trackeval", reason="the metric check needs TrackEval")
    done = _run("--check-metrics", "--data", str(shared_dir / "data" / "tracking"), "--json", str(tmp_path / "c.json"))
    assert done.returncode == 0, done.stderr
    check = json.loads((tmp_path / "c.json").read_text())["metric_check"]
    expected = {"TUD-Campus": (0.5265, 0.5577), "TUD-Stadtmitte": (0.5640, 0.6446)}
    assert set(check) == set(expected)
    for seq, (mota, idf1) in expected.items():
        assert round(check[seq]["motmetrics_mota"], 4) == mota
        assert round(check[seq]["motmetrics_idf1"], 4) == idf1
        assert check[seq]["trackeval_mota"] == pytest.approx(check[seq]["motmetrics_mota"], abs=1e-3)
        assert check[seq]["trackeval_idf1"] == pytest.approx(check[seq]["motmetrics_idf1"], abs=1e-3)
    assert "0.5265" in done.stdout and "MISMATCH" not in done.stdout


def test_motmetrics_scores_ground_truth_against_itself_as_perfect(shared_dir):
    pytest.importorskip("motmetrics", reason="needs py-motmetrics")
    gt = read_mot(shared_dir / "data/tracking/mot15_tud/TUD-Campus/gt/gt.txt")
    assert _tool().motmetrics_scores(gt, gt) == pytest.approx((1.0, 1.0))


def test_trackeval_kitti_layout_scores_ground_truth_as_perfect(shared_dir, tmp_path):
    """Labelled Cars written as a tracker's results: TrackEval's Kitti2DBox (DontCare, Van, occlusion rules)
    must find nothing wrong; shifting one object's id halfway must cost an ID switch."""
    pytest.importorskip("trackeval", reason="needs TrackEval")
    tool = _tool()
    data = shared_dir / "data" / "tracking"
    cars = read_kitti(data / "kitti/label_02/0000.txt").only_classes(["car"])
    perfect = tool.trackeval_kitti(data, {"0000": len(cars.frames)}, {"gt": {"0000": list(cars.frames)}}, ["car"],
                                   tmp_path / "a")
    scores = tool._scores(perfect["gt"]["COMBINED_SEQ"]["car"])
    assert scores.hota == pytest.approx(1.0) and scores.mota == pytest.approx(1.0) and scores.id_switches == 0
    car = int(np.intersect1d(cars.frames[125].ids, cars.frames[145].ids)[0])  # a car seen across frame 135
    switched = [f if f.frame < 135 else replace(f, ids=np.where(f.ids == car, 999, f.ids)) for f in cars.frames]
    worse = tool.trackeval_kitti(data, {"0000": len(cars.frames)}, {"gt": {"0000": switched}}, ["car"], tmp_path / "b")
    worse_scores = tool._scores(worse["gt"]["COMBINED_SEQ"]["car"])
    assert worse_scores.id_switches == 1 and worse_scores.idf1 < 1.0


def test_tud_run_compares_all_trackers_on_the_same_frames(shared_dir, tmp_path):
    for module in ("motmetrics", "trackeval", "trackers"):
        pytest.importorskip(module, reason=f"the comparison needs {module}")
    done = _run("--benchmarks", "tud", "--data", str(shared_dir / "data" / "tracking"), "--json",
                str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stderr
    tud = json.loads((tmp_path / "r.json").read_text())["results"]["tud"]
    assert tud["frames"] == 71 + 179 and tud["sequences"] == ["TUD-Campus", "TUD-Stadtmitte"]
    assert set(tud["trackers"]) == {"edgeseg", "edgeseg-defaults", "bytetrack", "ocsort", "bytetrack-tuned",
                                    "ocsort-tuned"}
    # a tuned reference is its best grid point, so never below its defaults (the grid starts with them)
    for ref in ("bytetrack", "ocsort"):
        assert tud["trackers"][f"{ref}-tuned"]["hota"] >= tud["trackers"][ref]["hota"]
        assert tud["trackers"][f"{ref}-tuned"]["params"]
    for name, r in tud["trackers"].items():
        assert r["updates"] == 250, name
        assert 0.3 < r["hota"] < 1 and 0.3 < r["idf1"] < 1 and r["mota"] > 0.3, name
        assert r["median_update_us"] > 0 and r["id_switches"] >= 0
    for label in ("edgeseg", "ByteTrack (trackers)", "OC-SORT (trackers)", "µs/update"):
        assert label in done.stdout
