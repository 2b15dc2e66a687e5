"""What both trainers (tools/train_semantic.py, tools/train_yolact.py) and their exports share: configs that
build on a base config, the chain of stages a model card's command lists, and checkpoints (read with
one-line errors, written so that a crash cannot truncate them)."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import torch

from pipeline.errors import EdgeSegError
from pipeline.yamlfile import read_mapping


def read_with_base(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """The config in ``path`` on top of its ``base`` (a path relative to it), recursively. A key given here
    replaces the base's whole value, nested mappings included: a later stage states what it changes, so
    the stages of one recipe share their data and augmentation settings instead of copying them."""
    if path.resolve() in chain:
        raise EdgeSegError(f"{path}: key 'base': the configs' bases form a loop")
    cfg = read_mapping(path, "training config")
    if "base" not in cfg:
        return cfg
    base = cfg.pop("base")
    if not isinstance(base, str):
        raise EdgeSegError(f"{path}: key 'base': a config file name, not {base!r}")
    return read_with_base(path.parent / base, (*chain, path.resolve())) | cfg


def exported_model(source: str) -> bool:
    """Whether a config's ``init`` or teacher names an exported model (its card or ONNX file, kept in git)
    rather than a run's checkpoint: the trainers read it back instead of loading it, and it has no earlier
    run to redo."""
    return Path(source).suffix in (".yaml", ".onnx")


def training_stages(cfg: dict, config_rel: Path, repo: Path, load: Callable[[Path], dict]) -> list[str]:
    """The configs to train, in order, for the model card's command: a config whose ``init`` is
    runs/<name>/best.pt starts from the run of tools/train_configs/<name>.yaml (read with ``load``), which
    may itself start from another. One whose ``init`` is an exported model (its card or ONNX file, in git)
    needs no earlier run: the chain ends there."""
    stages = [str(config_rel)]
    while cfg.get("init") and not exported_model(cfg["init"]):
        previous = Path("tools/train_configs") / f"{Path(cfg['init']).parent.name}.yaml"
        stages.insert(0, str(previous))
        cfg = load(repo / previous)
    return stages


def read_checkpoint(path: Path, producer: str) -> dict:
    """A checkpoint written by ``producer`` (a dict with the weights under 'model' and the net's config
    under 'net'), loaded onto the CPU."""
    if not path.is_file():
        raise EdgeSegError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as e:
        raise EdgeSegError(f"{path}: cannot be read as a torch checkpoint: {str(e).splitlines()[0]}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "net" not in ckpt:
        raise EdgeSegError(f"{path}: not a {producer} checkpoint (no 'model' and 'net' entries)")
    return ckpt


def training_device(name: str) -> torch.device:
    """``--device`` as a torch device: CUDA asked for where torch finds none is one line up front, not a
    traceback at the first step."""
    if name == "cuda" and not torch.cuda.is_available():
        raise EdgeSegError("--device cuda, but torch finds no CUDA GPU on this machine")
    return torch.device(name)


def save_checkpoint(ckpt: dict, path: Path) -> None:
    """Write through a temporary file renamed into place: a run killed while saving (a CPU session that
    ends, say) leaves the previous checkpoint whole for ``--resume`` instead of a truncated one."""
    partial = path.with_name(path.name + ".partial")
    torch.save(ckpt, partial)
    os.replace(partial, path)
