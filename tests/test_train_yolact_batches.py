"""tools/train_yolact.py's batches: the same whether the training process or worker processes prepare them
(every draw derives from the seed, the epoch and the batch number), different from epoch to epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the training tool needs torch (the `train` extra)")
TOOLS = Path(__file__).resolve().parents[1] / "tools"
CONFIG = TOOLS / "train_configs" / "edgeseg_yolact_road_stage1.yaml"


@pytest.fixture
def train_data(shared_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(TOOLS))
    import train_yolact as t

    from pipeline.preprocess import Preprocessor
    from pipeline.train.instance_data import load_camvid

    cfg = t.load_config(CONFIG)
    spec = t.input_spec(cfg, CONFIG, t.net_config(cfg, CONFIG).input_size)
    camvid = load_camvid(shared_dir / "data" / "camvid", "train", int(cfg["instances"]["camvid_min_area"]))
    data = t.TrainData(cfg, camvid, spec, (104, 117, 124), limit=4)  # 4 CamVid + 4 synthetic frames
    return t, data, Preprocessor(spec)


def batches(t, data, pre, epoch: int, workers: int) -> list:
    loader = torch.utils.data.DataLoader(t.EpochBatches(data, pre, epoch, 3), batch_size=None, num_workers=workers,
                                         collate_fn=t.keep_batch)
    return list(loader)


def assert_same(a: list, b: list) -> None:
    assert len(a) == len(b) == 3  # 8 frames in batches of 3
    for (xa, sa), (xb, sb) in zip(a, b):
        assert torch.equal(xa, xb)
        for one, other in zip(sa, sb, strict=True):
            np.testing.assert_array_equal(one.boxes, other.boxes)
            np.testing.assert_array_equal(one.classes, other.classes)
            np.testing.assert_array_equal(one.masks, other.masks)


@pytest.mark.slow
def test_workers_prepare_the_same_batches_as_the_training_process(train_data):
    t, data, pre = train_data
    in_process = batches(t, data, pre, epoch=1, workers=0)
    assert_same(in_process, batches(t, data, pre, epoch=1, workers=2))
    assert_same(in_process, batches(t, data, pre, epoch=1, workers=0))  # and drawing them again changes nothing
    other_epoch = batches(t, data, pre, epoch=2, workers=0)
    assert not all(torch.equal(x, y) for (x, _), (y, _) in zip(in_process, other_epoch))
    assert sum(len(s.classes) for _, samples in in_process for s in samples) > 0  # real objects, not empty frames
