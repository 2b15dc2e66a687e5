"""CamVid reader, evaluate_semantic end to end, and the `edgeseg eval` command."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import yaml

from conftest import TINY_MEAN, TINY_STD
from pipeline.cli import main
from pipeline.errors import EdgeSegError
from pipeline.eval.cli import evaluate_semantic
from pipeline.eval.datasets import open_dataset
from pipeline.eval.plots import CELL, COLUMN_LABELS, HEAD, IOU_COLUMN, ROW_LABELS
from pipeline.labels import CAMVID, CITYSCAPES
from pipeline.modelcard import SemanticMetrics, list_cards, load_card, save_card


def make_camvid(root, rng, count=3, size=(120, 90), split="val"):
    """A CamVid-layout folder with smooth random images (so the tiny net predicts several classes) and
    blocky random labels 0..11 (11 = void)."""
    (root / split).mkdir(parents=True)
    (root / f"{split}annot").mkdir()
    w, h = size
    for i in range(count):
        image = cv2.resize(rng.integers(0, 256, (h // 10, w // 10, 3), dtype=np.uint8), size,
                           interpolation=cv2.INTER_CUBIC)
        labels = cv2.resize(rng.integers(0, 12, (h // 15, w // 15), dtype=np.uint8), size,
                            interpolation=cv2.INTER_NEAREST)
        suffix = ".jpg" if i % 2 else ".png"
        cv2.imwrite(str(root / split / f"img{i}{suffix}"), image)
        cv2.imwrite(str(root / f"{split}annot" / f"img{i}.png"), labels)
    return root


def test_reader_pairs_images_and_labels(tmp_path, rng):
    data = open_dataset(f"camvid:{make_camvid(tmp_path, rng)}", "val")
    assert data.name == "camvid:val" and len(data) == 3
    samples = list(data)
    assert [s.name for s in samples] == ["img0", "img1", "img2"]
    assert samples[1].image.shape == (90, 120, 3) and samples[1].labels.shape == (90, 120)
    assert samples[1].labels.max() <= 11


@pytest.mark.parametrize("spec, words", [
    ("kitti:/data", "unknown kind 'kitti'"),
    ("camvid", "expected KIND:DIR"),
])
def test_bad_dataset_spec(spec, words):
    with pytest.raises(EdgeSegError, match=words):
        open_dataset(spec, "val")


def test_missing_split_names_the_directory(tmp_path, rng):
    make_camvid(tmp_path, rng)
    with pytest.raises(EdgeSegError) as err:
        open_dataset(f"camvid:{tmp_path}", "test")
    assert str(tmp_path / "test") in str(err.value)


def test_image_without_label_names_it(tmp_path, rng):
    make_camvid(tmp_path, rng)
    (tmp_path / "valannot" / "img1.png").unlink()
    with pytest.raises(EdgeSegError) as err:
        open_dataset(f"camvid:{tmp_path}", "val")
    assert str(tmp_path / "val" / "img1.jpg") in str(err.value)


def test_label_value_outside_the_label_set_names_the_file(tmp_path, rng):
    make_camvid(tmp_path, rng, count=1)
    cv2.imwrite(str(tmp_path / "valannot" / "img0.png"), np.full((90, 120), 40, np.uint8))
    with pytest.raises(EdgeSegError, match=r"img0\.png: label value 40"):
        list(open_dataset(f"camvid:{tmp_path}", "val"))


def test_evaluate_semantic_matches_an_independent_torch_pipeline(tmp_path, rng, tiny_card, tiny_torch_net):
    """Reference: resize with cv2 (the card's documented preprocessing), normalise by hand, run the torch
    module, upsample logits with torch bilinear, argmax, then count IoU class by class with masks."""
    torch, net = tiny_torch_net
    data = open_dataset(f"camvid:{make_camvid(tmp_path, rng)}", "val")
    tp, fp, fn = np.zeros(11), np.zeros(11), np.zeros(11)
    for sample in data:
        rgb = cv2.resize(sample.image, (96, 72), interpolation=cv2.INTER_LINEAR)[..., ::-1].astype(np.float32)
        x = ((rgb - np.float32(TINY_MEAN)) / np.float32(TINY_STD)).transpose(2, 0, 1)[None]
        with torch.no_grad():
            logits = torch.nn.functional.interpolate(net(torch.from_numpy(x.copy())), size=sample.labels.shape,
                                                     mode="bilinear", align_corners=False)
        pred = logits[0].argmax(0).numpy()
        labelled = sample.labels != CAMVID.void_index
        for c in range(11):
            tp[c] += np.sum(labelled & (sample.labels == c) & (pred == c))
            fp[c] += np.sum(labelled & (sample.labels != c) & (pred == c))
            fn[c] += np.sum(labelled & (sample.labels == c) & (pred != c))
    union = tp + fp + fn
    expected = {name: tp[c] / union[c] for c, name in enumerate(CAMVID.classes) if union[c]}
    metrics = evaluate_semantic(tiny_card, data, threads=1)
    assert metrics.images == 3 and metrics.dataset == "camvid:val" and metrics.resolution == "96x72"
    assert set(metrics.per_class) == set(expected)
    for name, iou in expected.items():
        assert metrics.per_class[name].iou == pytest.approx(iou, abs=2e-3), name  # a near-tie may flip
    assert metrics.miou == pytest.approx(np.mean(list(expected.values())), abs=2e-3)
    assert metrics.pixel_accuracy == pytest.approx(tp.sum() / (tp + fn).sum(), abs=2e-3)


def test_limit_and_progress(tmp_path, rng, tiny_card):
    data = open_dataset(f"camvid:{make_camvid(tmp_path, rng)}", "val")
    calls = []
    metrics = evaluate_semantic(tiny_card, data, limit=2, progress=lambda done, total: calls.append((done, total)))
    assert metrics.images == 2 and calls == [(0, 2), (1, 2), (2, 2)]
    assert metrics.command.endswith("--limit 2") and f"--model {tiny_card.path}" in metrics.command


def test_cli_writes_metrics_json_a_card_can_embed(tmp_path, rng, tiny_card, capsys):
    root = make_camvid(tmp_path / "camvid", rng)
    out = tmp_path / "out" / "metrics.json"
    assert main(["eval", f"camvid:{root}", "--model", str(tiny_card.path), "--json", str(out), "--threads", "1",
                 "--plot", str(tmp_path / "out" / "confusion.png")]) == 0
    printed = capsys.readouterr().out
    assert "mIoU" in printed and "Bicyclist" in printed
    # the confusion matrix: a row per class; a column per class, and one for the void channel's predictions
    # where there are any
    picture = cv2.imread(str(tmp_path / "out" / "confusion.png"))
    assert picture.shape[0] == HEAD + COLUMN_LABELS + 11 * CELL + 30
    assert picture.shape[1] in (ROW_LABELS + n * CELL + IOU_COLUMN for n in (11, 12))
    metrics = SemanticMetrics.model_validate(json.loads(out.read_text()))
    assert metrics.command.startswith(f"edgeseg eval camvid:{root} --split val")
    card = tiny_card.card.model_copy(update={"metrics": {"camvid:val": metrics}})
    shutil.copy(tiny_card.onnx_path, tmp_path / tiny_card.card.file)
    assert load_card(save_card(card, tmp_path / "with_metrics.yaml")).card.metrics["camvid:val"] == metrics


def test_cli_refuses_a_model_with_other_classes(tmp_path, rng, tiny_card, capsys):
    raw = yaml.safe_load(tiny_card.path.read_text())
    raw["classes"], raw["palette"] = list(CITYSCAPES.classes), [list(c) for c in CITYSCAPES.palette]
    (tmp_path / "city.yaml").write_text(yaml.safe_dump(raw))
    shutil.copy(tiny_card.onnx_path, tmp_path / tiny_card.card.file)
    root = make_camvid(tmp_path / "camvid", rng, count=1)
    assert main(["eval", f"camvid:{root}", "--model", str(tmp_path / "city.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "city.yaml" in err and "camvid11" in err and "road, sidewalk" in err


@pytest.mark.parametrize("argv, words", [
    (["--split", "test"], "split 'test' not found"),
    (["--limit", "0"], "--limit must be a positive"),
])
def test_cli_user_errors_are_one_line(tmp_path, rng, tiny_card, capsys, argv, words):
    root = make_camvid(tmp_path, rng, count=1)
    assert main(["eval", f"camvid:{root}", "--model", str(tiny_card.path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err


def _camvid_cards():
    try:
        cards = list_cards()
    except EdgeSegError:
        return []
    return [c for c in cards if c.card.task == "semantic" and tuple(c.card.classes[:11]) == CAMVID.classes]


def test_real_model_on_real_camvid_val(shared_dir):
    """A trained CamVid model on 4 real val images: a working road-scene net labels most pixels (road,
    sky, buildings) right, where random weights score ~1 % mIoU (see the tiny net above)."""
    cards = _camvid_cards()
    if not cards:
        pytest.skip("no model card with CamVid classes in engines/ yet")
    data = open_dataset(f"camvid:{shared_dir / 'data' / 'camvid'}", "val")
    metrics = evaluate_semantic(cards[0], data, limit=4)
    assert metrics.images == 4
    assert metrics.pixel_accuracy > 0.7, metrics
    assert metrics.miou > 0.3, metrics
