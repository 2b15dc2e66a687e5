"""Reading a user's .pth file into a plain state_dict, and loading it strictly into our module, with
every way a file can be wrong turned into one EdgeSegError line that names the file."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from pipeline.errors import EdgeSegError

# Batch-norm bookkeeping (a step counter, not a weight): checkpoints from PyTorch < 0.4 lack it.
_BOOKKEEPING_SUFFIX = ".num_batches_tracked"
_SHOW_KEYS = 3  # how many offending keys an error line names
# torch's message when weights_only=True meets a pickled class or function (e.g. argparse.Namespace).
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, by name.

    Loads with ``weights_only=True`` (a checkpoint must not run code) onto the CPU. Accepts the two
    wrappings training scripts commonly add: ``{'state_dict': ...}`` and DataParallel's ``module.``
    key prefix.
    """
    path = Path(path)
    if not path.exists():
        raise EdgeSegError(f"{path}: checkpoint not found")
    if not path.is_file():
        raise EdgeSegError(f"{path}: not a file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds (zip, unpickling, EOF) for broken files
        refused = _REFUSED_GLOBAL.search(str(e))
        if refused:
            raise EdgeSegError(f"{path}: holds Python objects besides tensors ({refused.group(1)}), which a "
                               f"weights-only load refuses to unpickle; save just the state_dict") from None
        raise EdgeSegError(f"{path}: cannot be read as a PyTorch checkpoint (truncated or corrupt?): "
                           f"{_first_line(e)}") from None
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        what = "an empty mapping" if isinstance(obj, Mapping) else f"a {type(obj).__name__}"
        raise EdgeSegError(f"{path}: not a state_dict (a mapping of parameter names to tensors): it holds {what}")
    bad = next((k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise EdgeSegError(f"{path}: not a state_dict: entry {bad!r} is a {type(obj[bad]).__name__}, not a tensor")
    if all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    return dict(obj)


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOW_KEYS])
    return f"{shown}, ..." if len(keys) > _SHOW_KEYS else shown


def load_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], path: str | os.PathLike,
                arch: str) -> None:
    """Load ``state`` into ``model``: every key present on both sides with the same shape.

    Batch-norm step counters are the only entries allowed to be missing (old checkpoints lack them)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith(_BOOKKEEPING_SUFFIX)]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_listing(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_listing(unexpected)})")
        raise EdgeSegError(f"{path}: not an {arch} state_dict: {'; '.join(parts)}")
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if wrong:
        k = wrong[0]
        more = f" (+{len(wrong) - 1} more keys with wrong shapes)" if len(wrong) > 1 else ""
        raise EdgeSegError(f"{path}: key '{k}': expected shape {tuple(own[k].shape)} for {arch}, "
                           f"checkpoint has {tuple(state[k].shape)}{more}")
    model.load_state_dict({**own, **state}, strict=True)
