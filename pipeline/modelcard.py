"""Model cards: the YAML beside every ONNX file that says how to feed it and what it gives back.

Preprocessing, decoding and reporting are driven by the card, so one loader validates it (pydantic)
and turns every problem into a one-line :class:`EdgeSegError` naming the file and the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, get_args

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


class FoveaSpec(_Strict):
    """A fixed foveating warp applied with the resize (:mod:`pipeline.foveate`): the band ``rows`` (top,
    bottom) x ``cols`` (left, right), as fractions of the frame's height and width, gets more of the
    model's input pixels; along each axis the pixel density inside the band is ``1 + gain`` times the
    density outside. A model trained with a warp must run with the same one; decoders' outputs are
    mapped back to the frame."""

    rows: tuple[float, float]
    cols: tuple[float, float] = (0.0, 1.0)
    row_gain: float = Field(ge=0, le=8)
    col_gain: float = Field(0.0, ge=0, le=8)

    @model_validator(mode="after")
    def _bands(self) -> FoveaSpec:
        for key in ("rows", "cols"):
            lo, hi = getattr(self, key)
            if not 0 <= lo < hi <= 1:
                raise ValueError(f"{key} must be [start, end] with 0 <= start < end <= 1, not [{lo}, {hi}]")
        return self


class InputSpec(_Strict):
    """How a BGR uint8 frame becomes the model's NCHW float32 input: resize to width x height (through
    ``fovea``'s warp where one is declared), reorder channels, then ``(pixel - mean) / std`` with mean and
    std in 0..255 pixel units, given in the model's colour order. (ImageNet's /255-then-normalise is
    mean*255, std*255 here; ESPNet's normalise-then-/255 is std*255.)"""

    name: str = "input"
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    color_order: Literal["RGB", "BGR"]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: Literal["stretch"] = "stretch"
    fovea: FoveaSpec | None = None


# The outputs of a YOLACT graph, by fixed name (see pipeline/nets/yolact.py): loc (N,P,4) raw box offsets,
# conf (N,P,C+1) softmax scores with background first, mask (N,P,K) tanh coefficients, proto (N,Hp,Wp,K)
# prototypes, priors (P,4) constant anchors cx,cy,w,h in [0, 1].
YOLACT_OUTPUTS = ("loc", "conf", "mask", "proto", "priors")


class OutputSpec(_Strict):
    """``kind`` logits: NxCxhxw scores; labels: Nxhxw class indices; yolact: the five outputs
    :data:`YOLACT_OUTPUTS`, whose names are fixed (``name`` is then the class-score output, "conf")."""

    name: str
    kind: Literal["logits", "labels", "yolact"]

    @model_validator(mode="before")
    @classmethod
    def _yolact_name(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("kind") == "yolact" and "name" not in data:
            return {**data, "name": "conf"}
        return data

    @model_validator(mode="after")
    def _fixed_yolact_name(self) -> OutputSpec:
        if self.kind == "yolact" and self.name != "conf":
            raise ValueError(f"kind 'yolact' reads the fixed outputs {', '.join(YOLACT_OUTPUTS)}: "
                             f"name must be 'conf' (or left out), not '{self.name}'")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """Every graph output the decoder reads."""
        return YOLACT_OUTPUTS if self.kind == "yolact" else (self.name,)


MaskCrop = Literal["prototype", "box"]  # see PostprocessSpec
MASK_CROPS: tuple[str, ...] = get_args(MaskCrop)


class PostprocessSpec(_Strict):
    """Detection post-processing defaults of an instance model (a decoder may override them).

    Semantics are the official YOLACT ones: candidates whose best class score exceeds
    ``score_threshold``; per class the ``per_class_top`` best go through NMS at ``nms_iou`` ("fast":
    YOLACT's matrix NMS, where a box suppressed by a higher one still suppresses; "traditional": greedy);
    the ``top_k`` best survivors over all classes are kept; masks are sigmoid(proto @ coefficients)
    cropped to the box and cut at ``mask_threshold``. ``mask_crop`` "prototype" is the official crop (at
    prototype resolution, the box padded by one prototype pixel); "box" also clears frame pixels outside
    the box itself. ``maskness_power`` p > 0 (not official) multiplies each score by the mask's
    "maskness" to the power p -- the mean probability over the mask's pixels above ``mask_threshold``, at
    prototype resolution (SOLOv2's rescoring) -- so that detections whose masks the net is unsure of rank
    lower; those then under ``score_threshold`` are dropped. Our own models' export calibrates
    ``mask_threshold`` and ``mask_crop`` on held-out frames (tools/export_yolact.py); it leaves
    ``maskness_power`` at 0 because the lower scores cost tracking more than they gain in mask AP (README).

    The default score threshold is for streaming display, not for mAP: the official evaluation keeps
    everything above 0.05 because AP rewards low-confidence guesses, while a video overlay drawn at
    0.05 is covered in false positives; the official demo draws at 0.15-0.3 and 0.3 keeps most true
    objects of the COCO checkpoints while dropping nearly all clutter. Evaluations pass 0.05.
    """

    score_threshold: float = Field(0.3, ge=0, le=1)
    nms: Literal["fast", "traditional"] = "fast"
    nms_iou: float = Field(0.5, gt=0, le=1)
    top_k: int = Field(100, gt=0)
    per_class_top: int = Field(200, gt=0)
    mask_threshold: float = Field(0.5, gt=0, lt=1)
    mask_crop: MaskCrop = "prototype"
    maskness_power: float = Field(0.0, ge=0, le=4)  # 0: scores as the class head gives them (official)


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
    # Per-class logit offsets fitted after training and already folded into the ONNX classifier bias
    # (pipeline.nets.class_bias); listed so the card says what was changed after the last epoch.
    class_bias: list[float] | None = None


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


class InstanceMetrics(_Strict):
    """COCO-style mask (and box) AP, as pycocotools computes it: AP averaged over IoU 0.5:0.95, AP50."""

    dataset: str  # e.g. "synth:9000-9004"
    resolution: str  # model input, "384x384"
    mask_ap: float
    mask_ap50: float
    box_ap: float | None = None
    box_ap50: float | None = None
    per_class_mask_ap: dict[str, float] = {}
    per_class_mask_ap50: dict[str, float] = {}
    instances_per_class: dict[str, int] = {}
    # COCO object sizes by mask area in image pixels (small < 32^2, medium < 96^2, large)
    mask_ap50_by_size: dict[str, float] = {}
    instances_by_size: dict[str, int] = {}
    images: int
    instances: int | None = None  # ground-truth objects evaluated
    command: str


class PanopticMetrics(_Strict):
    """Panoptic quality of a pipeline's fused output (a semantic and an instance model plus the fusion
    settings of a pipeline config), as :mod:`pipeline.eval.panoptic` computes it."""

    dataset: str  # e.g. "synth:9000-9004"
    config: str  # the pipeline config whose models and panoptic section were scored
    pq: float
    sq: float
    rq: float
    pq_things: float
    pq_stuff: float
    per_class_pq: dict[str, float] = {}
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
    postprocess: PostprocessSpec | None = None  # instance models only; None there means the defaults
    metrics: dict[str, SemanticMetrics | InstanceMetrics] = {}
    latency: list[Latency] = []

    @model_validator(mode="after")
    def _palette_matches_classes(self) -> ModelCard:
        if len(self.palette) != len(self.classes):
            raise ValueError(f"palette has {len(self.palette)} colours for {len(self.classes)} classes")
        return self

    @model_validator(mode="after")
    def _parts_fit_the_task(self) -> ModelCard:
        """A semantic card with detection outputs (or the reverse) would reach the wrong decoder."""
        instance = self.task == "instance"
        if instance != (self.output.kind == "yolact"):
            raise ValueError(f"task '{self.task}' does not go with output kind '{self.output.kind}'")
        if not instance and self.postprocess is not None:
            raise ValueError("'postprocess' applies to instance models only")
        want = InstanceMetrics if instance else SemanticMetrics
        for key, m in self.metrics.items():
            if not isinstance(m, want):
                raise ValueError(f"metrics '{key}': a {self.task} model needs {want.__name__} fields")
        return self

    @property
    def detection(self) -> PostprocessSpec:
        """The post-processing defaults of an instance model."""
        return self.postprocess or PostprocessSpec()


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
