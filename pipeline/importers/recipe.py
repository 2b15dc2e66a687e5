"""What an architecture module under pipeline.importers provides to the import command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from pipeline.modelcard import InputSpec


@dataclass(frozen=True)
class BuiltModel:
    model: torch.nn.Module  # our implementation with the checkpoint's weights, in eval mode
    architecture: str  # for the card, e.g. "ESPNet (p=2, q=8)"
    output_channels: int


class ArchitectureRecipe(Protocol):
    NAME: str  # as on the command line
    REPOSITORY: str  # where the official code and checkpoints come from
    SIZE_MULTIPLE: int  # input width and height must be multiples of this

    def build(self, state: dict[str, torch.Tensor], checkpoint: Path) -> BuiltModel: ...

    def input_spec(self, dataset: str, width: int, height: int) -> InputSpec: ...

    def default_size(self, dataset: str, checkpoint: Path) -> tuple[int, int]: ...
