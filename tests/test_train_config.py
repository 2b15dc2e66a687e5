"""pipeline.train.config: the stage chain a model card's command lists, checkpoint reading errors, and
checkpoint writing that a crash cannot truncate."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="checkpoints are torch files (the `train` extra)")
from pipeline.errors import EdgeSegError  # noqa: E402
from pipeline.train.config import read_checkpoint, read_with_base, save_checkpoint, training_stages  # noqa: E402


def test_training_stages_follow_init_back_to_the_first_run(tmp_path):
    configs = tmp_path / "tools" / "train_configs"
    configs.mkdir(parents=True)
    (configs / "one.yaml").write_text("name: one\nlr: 0.1\n")
    (configs / "two.yaml").write_text("base: one.yaml\nname: two\ninit: runs/one/best.pt\n")
    (configs / "three.yaml").write_text("base: two.yaml\nname: three\ninit: runs/two/best.pt\n")
    last = read_with_base(configs / "three.yaml")
    assert last == {"name": "three", "lr": 0.1, "init": "runs/two/best.pt"}
    assert training_stages(last, Path("tools/train_configs/three.yaml"), tmp_path, read_with_base) == [
        "tools/train_configs/one.yaml", "tools/train_configs/two.yaml", "tools/train_configs/three.yaml"]
    assert training_stages(read_with_base(configs / "one.yaml"), Path("tools/train_configs/one.yaml"), tmp_path,
                           read_with_base) == ["tools/train_configs/one.yaml"]
    shipped = last | {"init": "engines/edgeseg_yolact_road.yaml"}  # the shipped file: no run to redo first
    assert training_stages(shipped, Path("tools/train_configs/three.yaml"), tmp_path, read_with_base) == [
        "tools/train_configs/three.yaml"]


def test_checkpoint_errors_are_one_line(tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a checkpoint")
    torch.save({"weights": {}}, tmp_path / "other.pt")
    cases = [("none.pt", "checkpoint not found"), ("garbage.pt", "cannot be read as a torch checkpoint: "),
             ("other.pt", "not a tools/x.py checkpoint (no 'model' and 'net' entries)")]
    for name, message in cases:
        with pytest.raises(EdgeSegError) as e:
            read_checkpoint(tmp_path / name, "tools/x.py")
        assert str(e.value).startswith(f"{tmp_path / name}: {message}") and "\n" not in str(e.value)
    torch.save({"model": {"w": torch.ones(2)}, "net": {"name": "n"}}, tmp_path / "good.pt")
    assert read_checkpoint(tmp_path / "good.pt", "tools/x.py")["net"] == {"name": "n"}


def test_a_save_that_fails_halfway_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {"w": torch.zeros(3)}, "net": {"name": "n"}, "epoch": 4}, path)
    assert read_checkpoint(path, "tools/x.py")["epoch"] == 4 and list(tmp_path.iterdir()) == [path]
    real_save = torch.save

    def dies_halfway(obj, target):  # as a process killed while writing would leave it
        real_save(obj, target)
        Path(target).write_bytes(Path(target).read_bytes()[:40])
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"model": {"w": torch.ones(3)}, "net": {"name": "n"}, "epoch": 5}, path)
    assert read_checkpoint(path, "tools/x.py")["epoch"] == 4
    monkeypatch.setattr(torch, "save", real_save)
    save_checkpoint({"model": {"w": torch.ones(3)}, "net": {"name": "n"}, "epoch": 5}, path)
    assert read_checkpoint(path, "tools/x.py")["epoch"] == 5 and list(tmp_path.iterdir()) == [path]
