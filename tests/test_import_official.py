"""The official checkpoints in ../shared load strictly into our implementations, and the imported
ONNX files compute what torch computes and segment real CamVid road scenes plausibly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from pipeline.importers import espnet, espnetv2  # noqa: E402
from pipeline.importers.checkpoint import read_state_dict  # noqa: E402
from pipeline.labels import CAMVID, CITYSCAPES  # noqa: E402
from pipeline.modelcard import load_card  # noqa: E402
from pipeline.nets.export import count_params  # noqa: E402
from pipeline.preprocess import Preprocessor  # noqa: E402

EDGESEG = Path(sys.executable).parent / "edgeseg"

# file -> (recipe, architecture, output channels)
OFFICIAL = {
    "espnet_cityscapes_camvid/espnet_p_2_q_8.pth": (espnet, "ESPNet (p=2, q=8, test/Model.py decoder)", 20),
    "espnet_cityscapes_camvid/espnet_p_2_q_3.pth": (espnet, "ESPNet (p=2, q=3, test/Model.py decoder)", 20),
    "espnet_cityscapes_camvid/espnet_p_2_q_8_camvid.pth": (espnet, "ESPNet (p=2, q=8, train/Model.py decoder)", 12),
    "espnetv2_cityscapes/espnetv2_s_2.0_city_1024x512.pth": (espnetv2, "ESPNetv2 (s=2.0)", 20),
    "espnetv2_cityscapes/espnetv2_s_1.0_city_512x256.pth": (espnetv2, "ESPNetv2 (s=1.0)", 20),
}
# Parameter counts published in EdgeNets' segmentation README (millions, 2 decimals).
PUBLISHED_PARAMS_M = {"espnetv2_s_2.0_city_1024x512.pth": 0.79, "espnetv2_s_1.0_city_512x256.pth": 0.23}

# Cityscapes train ids -> the CamVid class covering the same things (unmapped ids count as wrong).
CITY_TO_CAMVID = {
    "road": "Road", "sidewalk": "Pavement", "building": "Building", "wall": "Building", "fence": "Fence",
    "pole": "Pole", "traffic light": "SignSymbol", "traffic sign": "SignSymbol", "vegetation": "Tree",
    "terrain": "Tree", "sky": "Sky", "person": "Pedestrian", "rider": "Bicyclist", "car": "Car", "truck": "Car",
    "bus": "Car", "motorcycle": "Bicyclist", "bicycle": "Bicyclist",
}
VAL_IMAGE = "0016E5_07959"  # a street scene in which all 11 CamVid classes occur


@pytest.fixture(scope="module")
def weights(shared_dir) -> Path:
    path = shared_dir / "data" / "weights"
    if not path.is_dir():
        pytest.skip(f"official checkpoints not available ({path} missing)")
    return path


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_official_checkpoint_loads_strictly(weights, name):
    recipe, architecture, channels = OFFICIAL[name]
    path = weights / name
    built = recipe.build(read_state_dict(path), path)  # raises EdgeSegError on any key/shape mismatch
    assert (built.architecture, built.output_channels) == (architecture, channels)
    if path.name in PUBLISHED_PARAMS_M:
        assert count_params(built.model) / 1e6 == pytest.approx(PUBLISHED_PARAMS_M[path.name], abs=0.005)


def _val_pair(weights: Path) -> tuple[np.ndarray, np.ndarray]:
    camvid = weights.parent / "camvid"
    image = cv2.imread(str(camvid / "val" / f"{VAL_IMAGE}.jpg"))
    labels = cv2.imread(str(camvid / "valannot" / f"{VAL_IMAGE}.png"), cv2.IMREAD_GRAYSCALE)
    if image is None or labels is None:
        pytest.skip(f"CamVid val image {VAL_IMAGE} not available in {camvid}")
    return image, labels


def _import_and_compare(weights: Path, tmp_path: Path, arch: str, name: str, size: str):
    """Import through the command line, run the ONNX on a real CamVid image and compare with torch."""
    path = weights / name
    proc = subprocess.run([str(EDGESEG), "import", arch, str(path), "--out", str(tmp_path), "--size", size],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    loaded = load_card(tmp_path / f"{path.stem}.yaml")
    image, labels = _val_pair(weights)
    x = Preprocessor(loaded.card.input)(image)
    got = ort.InferenceSession(str(loaded.onnx_path)).run(None, {"input": x})[0]
    model = OFFICIAL[name][0].build(read_state_dict(path), path).model
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= 1e-3 * max(1.0, np.abs(want).max())
    assert (got.argmax(1) == want.argmax(1)).mean() > 0.999
    pred = cv2.resize(got[0].argmax(0).astype(np.uint8), labels.shape[::-1], interpolation=cv2.INTER_NEAREST)
    return loaded.card, pred, labels


def _pixel_accuracy(pred_camvid: np.ndarray, labels: np.ndarray) -> float:
    known = labels != CAMVID.void_index
    return float((pred_camvid[known] == labels[known]).mean())


@pytest.mark.slow
def test_official_espnet_camvid_onnx_matches_torch_and_segments_camvid(weights, tmp_path):
    card, pred, labels = _import_and_compare(weights, tmp_path, "espnet", "espnet_cityscapes_camvid/"
                                             "espnet_p_2_q_8_camvid.pth", "480x360")
    # Conv multiply-adds of this net at 480x360 per ../shared/ANCHORS.md: 1.34 G.
    assert card.gflops / 2 == pytest.approx(1.34, abs=0.01)
    assert _pixel_accuracy(pred, labels) > 0.85  # the val split averages 92.6 % (see importer report)


@pytest.mark.slow
def test_official_espnetv2_onnx_matches_torch_and_segments_a_road_scene(weights, tmp_path):
    card, pred, labels = _import_and_compare(weights, tmp_path, "espnetv2", "espnetv2_cityscapes/"
                                             "espnetv2_s_1.0_city_512x256.pth", "512x256")
    # EdgeNets' README: 271.66 million FLOPs (multiply-adds) at 512x256.
    assert card.gflops / 2 == pytest.approx(0.27166, rel=0.02)
    lut = np.full(256, 255, np.uint8)
    for city, camvid in CITY_TO_CAMVID.items():
        lut[CITYSCAPES.index(city)] = CAMVID.index(camvid)
    assert _pixel_accuracy(lut[pred], labels) > 0.75  # a Cityscapes net on CamVid: road scenes, not noise
