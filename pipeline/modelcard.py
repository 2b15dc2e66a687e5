"""Model cards: the YAML beside every ONNX file that says how to feed it and what it gives back.

Preprocessing, decoding and reporting are driven by the card, so one loader validates it (pydantic)
and turns every problem into a one-line :class:`EdgeSegError` naming the file and the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.errors import EdgeSegError
from pipeline.yamlfile import read_mapping, validation_message

REPO_ENGINES = Path(__file__).resolve().parent.parent / "engines"


def engines_dirs() -> list[Path]:
    """Where model cards are looked up: $EDGESEG_ENGINES (os.pathsep-separated) or the repo's engines/
    plus engines/imported/ (where `edgeseg import` writes converted third-party checkpoints)."""
    env = os.environ.get("EDGESEG_ENGINES")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [REPO_ENGINES, REPO_ENGINES / "imported"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """How a BGR uint8 frame becomes the model's NCHW float32 input: resize to width x height,
    reorder channels, then ``(pixel - mean) / std`` with mean and std in 0..255 pixel units, given in
    the model's colour order. (ImageNet's /255-then-normalise is mean*255, std*255 here; ESPNet's
    normalise-then-/255 is std*255.)"""

    name: str = "input"
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    color_order: Literal["RGB", "BGR"]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: Literal["stretch"] = "stretch"


class OutputSpec(_Strict):
    name: str
    kind: Literal["logits", "labels"]  # NxCxhxw scores, or Nxhxw class indices


class DataRef(_Strict):
    name: str
    licence: str
    role: str  # e.g. "train", "val", "pretraining"


class TrainingInfo(_Strict):
    data: list[DataRef]
    command: str
    seed: int | None = None
    config: str | None = None  # path of the training config in this repo
    epochs: float | None = None
    hardware: str | None = None


class SourceInfo(_Strict):
    """Where an imported model came from."""

    repository: str
    checkpoint: str  # file name as the user gave it
    sha256: str
    licence: str


class ClassMetrics(_Strict):
    iou: float
    accuracy: float | None = None


class SemanticMetrics(_Strict):
    dataset: str  # e.g. "camvid:val"
    resolution: str  # "480x360"
    miou: float
    pixel_accuracy: float
    mean_accuracy: float
    per_class: dict[str, ClassMetrics]
    images: int
    command: str


class Latency(_Strict):
    runtime: str  # "onnxruntime 1.31.1"
    provider: str  # "CPUExecutionProvider"
    threads: int
    input: str  # "1x3x360x480"
    median_ms: float
    p90_ms: float | None = None
    machine: str
    command: str | None = None


class ModelCard(_Strict):
    name: str
    task: Literal["semantic", "instance"]
    file: str  # ONNX file, relative to the card
    architecture: str
    label_set: str | None = None  # name of a pipeline.labels.LabelSet the classes follow, if any
    classes: list[str]  # one per output channel / class index
    palette: list[tuple[int, int, int]]  # RGB, one per class
    input: InputSpec
    output: OutputSpec
    params: int
    gflops: float  # multiply-adds x2 at input size, batch 1
    licence: str
    description: str = ""
    training: TrainingInfo | None = None
    source: SourceInfo | None = None
    metrics: dict[str, SemanticMetrics] = {}
    latency: list[Latency] = []

    @model_validator(mode="after")
    def _palette_matches_classes(self) -> ModelCard:
        if len(self.palette) != len(self.classes):
            raise ValueError(f"palette has {len(self.palette)} colours for {len(self.classes)} classes")
        return self


class LoadedCard:
    """A validated card plus where it was found (needed to resolve its ONNX file)."""

    def __init__(self, card: ModelCard, path: Path):
        self.card = card
        self.path = path

    @property
    def onnx_path(self) -> Path:
        return self.path.parent / self.card.file

    def __repr__(self) -> str:
        return f"LoadedCard({self.card.name!r}, {str(self.path)!r})"


def load_card(path: str | os.PathLike) -> LoadedCard:
    path = Path(path)
    raw = read_mapping(path, "model card")
    try:
        card = ModelCard.model_validate(raw)
    except ValidationError as e:
        raise EdgeSegError(validation_message(path, e)) from None
    loaded = LoadedCard(card, path)
    if not loaded.onnx_path.is_file():
        raise EdgeSegError(f"{path}: key 'file': {loaded.onnx_path} does not exist")
    return loaded


def save_card(card: ModelCard, path: str | os.PathLike) -> Path:
    path = Path(path)
    data = card.model_dump(mode="json", exclude_none=True)
    # Flow style for leaf lists keeps a palette entry or a mean on one readable line.
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=110, allow_unicode=True, default_flow_style=None))
    return path


def list_cards() -> list[LoadedCard]:
    cards = []
    for d in engines_dirs():
        for p in sorted(d.glob("*.yaml")):
            cards.append(load_card(p))
    return cards


def find_card(name_or_path: str) -> LoadedCard:
    """A card by file path (``*.yaml``) or by model name among :func:`engines_dirs`."""
    if name_or_path.endswith((".yaml", ".yml")) or os.sep in name_or_path:
        return load_card(name_or_path)
    for d in engines_dirs():
        p = d / f"{name_or_path}.yaml"
        if p.is_file():
            return load_card(p)
    known = ", ".join(c.card.name for c in list_cards()) or "none"
    raise EdgeSegError(f"model '{name_or_path}' not found in {', '.join(map(str, engines_dirs()))} (known: {known})")


DEFAULT_SEMANTIC_MODEL = "edgeseg_road_s"
