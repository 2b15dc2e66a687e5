"""pipeline.nets.class_bias: the one-pass offset search against brute force, the fit on a known bias, the
fold into a real ONNX file (the shipped semantic net), and tools/calibrate_semantic.py on a copy of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from pipeline.errors import EdgeSegError
from pipeline.modelcard import REPO_ENGINES, load_card
from pipeline.eval.semantic import confusion_matrix, scores
from pipeline.nets.class_bias import DEFAULT_GRID, _miou_per_offset, fit_class_bias, fold_class_bias

pytest.importorskip("onnx", reason="onnx (the `train` extra) edits the exported graph")
REPO = Path(__file__).resolve().parents[1]


def _miou(logits: np.ndarray, labels: np.ndarray, bias: np.ndarray) -> float:
    return scores(confusion_matrix(labels, (logits + bias).argmax(1), logits.shape[1])).miou


def _biased_scores(rng: np.random.Generator, n: int, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noisy one-hot scores of random labels, every class's score then shifted by ``shift``."""
    labels = rng.integers(0, len(shift), n)
    scores = 2.0 * np.eye(len(shift))[labels] + rng.normal(0, 1, (n, len(shift))) + shift
    return scores, labels


def test_one_pass_search_matches_brute_force():
    rng = np.random.default_rng(0)
    logits, labels = _biased_scores(rng, 5000, np.array([0.0, 1.0, -0.5, 0.3, 0.0]))
    bias = np.array([0.2, -0.4, 0.0, 0.1, 0.0])
    for c in (0, 2, 4):
        brute = []
        for g in DEFAULT_GRID:
            trial = bias.copy()
            trial[c] = g
            brute.append(_miou(logits, labels, trial))
        np.testing.assert_allclose(_miou_per_offset(logits, labels, bias, c, DEFAULT_GRID), brute, atol=1e-12)


def test_fit_undoes_a_known_class_shift():
    """Class 1 scored 1.5 too high, class 3 1.0 too low: the fit moves them back, on fresh data too."""
    shift = np.array([0.0, 1.5, 0.0, -1.0])
    rng = np.random.default_rng(1)
    logits, labels = _biased_scores(rng, 20000, shift)
    bias = fit_class_bias(logits, labels)
    assert abs(bias.mean()) < 1e-5
    relative = bias - bias[[0, 2]].mean()  # classes 0 and 2 carry no shift
    assert relative[1] == pytest.approx(-1.5, abs=0.4) and relative[3] == pytest.approx(1.0, abs=0.4)
    fresh, fresh_labels = _biased_scores(rng, 20000, shift)
    assert _miou(fresh, fresh_labels, bias) > _miou(fresh, fresh_labels, np.zeros(4)) + 0.05


def test_fit_needs_zero_in_the_grid():
    with pytest.raises(ValueError, match="contain 0"):
        fit_class_bias(np.zeros((4, 2)), np.zeros(4, np.int64), grid=np.array([0.5, 1.0]))


def test_fold_adds_the_offsets_to_every_output_pixel(tmp_path):
    """The shipped semantic net (1x1 classifier conv, then a bilinear resize): folded logits are the old
    logits plus one constant per class, at every pixel of the resized output."""
    path = tmp_path / "net.onnx"
    shutil.copy(REPO_ENGINES / "edgeseg_road_s.onnx", path)
    image = np.random.default_rng(2).normal(0, 1, (1, 3, 360, 480)).astype(np.float32)
    before = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": image})[0]
    offsets = np.linspace(-1.0, 1.0, 11).astype(np.float32)
    fold_class_bias(path, "logits", offsets)
    after = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": image})[0]
    np.testing.assert_allclose(after - before, np.broadcast_to(offsets[None, :, None, None], before.shape), atol=1e-4)


def test_fold_refuses_an_output_that_is_not_a_linear_classifier(tmp_path):
    path = tmp_path / "yolact.onnx"
    shutil.copy(REPO_ENGINES / "edgeseg_yolact_road.onnx", path)
    with pytest.raises(EdgeSegError, match="does not come from a Conv with a bias"):
        fold_class_bias(path, "conf", np.zeros(4, np.float32))  # a softmax output


@pytest.mark.slow
def test_calibrate_tool_refits_a_copy_and_records_it(shared_dir, tmp_path):
    """On a copy of the shipped (already calibrated) net, with 12 images: offsets are fitted and folded, the
    card's record is the sum of old and new, its metrics are re-measured with the tool's command."""
    for suffix in (".onnx", ".yaml"):
        shutil.copy(REPO_ENGINES / f"edgeseg_road_s{suffix}", tmp_path / f"edgeseg_road_s{suffix}")
    old = load_card(tmp_path / "edgeseg_road_s.yaml").card
    done = subprocess.run([sys.executable, str(REPO / "tools" / "calibrate_semantic.py"),
                           str(tmp_path / "edgeseg_road_s.yaml"), "--camvid", str(shared_dir / "data" / "camvid"),
                           "--limit", "12"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    card = load_card(tmp_path / "edgeseg_road_s.yaml").card
    assert len(card.training.class_bias) == 11 and card.training.class_bias != old.training.class_bias
    assert [d.role for d in card.training.data].count("calibration") == 1
    assert card.metrics["camvid_val"].images == 12 and card.metrics["synth_val"].images == 12
    assert "CamVid val mIoU" in done.stdout


def test_calibrate_tool_refuses_a_model_that_is_not_ours():
    card = REPO_ENGINES / "edgeseg_yolact_road.yaml"  # refused before anything is read or written
    done = subprocess.run([sys.executable, str(REPO / "tools" / "calibrate_semantic.py"), str(card)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"error: {card}: offsets are fitted only for "
                                                                    "semantic nets trained here on CamVid")
