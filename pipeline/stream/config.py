"""Pipeline configs: YAML in, a validated :class:`PipelineConfig` out.

Three steps, in this order, so that every value is checked whatever its origin:
1. read the YAML mapping;
2. apply ``--set key.path=value`` overrides (the value is parsed as YAML, so ``0.4``, ``true`` and
   ``[cpu]`` get their natural types);
3. expand ``${VAR}`` / ``${VAR:-default}`` in string values from the environment (a deployment keeps
   camera URLs and credentials out of the file);
then validate with pydantic. Unknown keys and wrong types are one-line errors naming the file and
the key path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.analytics import AnalyticsConfig
from pipeline.errors import EdgeSegError
from pipeline.modelcard import DEFAULT_SEMANTIC_MODEL
from pipeline.panoptic import PanopticConfig
from pipeline.sources.base import SourceOptions
from pipeline.tracking import TrackerConfig
from pipeline.yamlfile import read_mapping, validation_message

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BufferConfig(_Strict):
    """The queue between the source and the rest. ``auto``: ``drop_oldest`` for live sources (camera,
    RTSP: latency stays bounded, drops are counted), ``block`` for files, folders and synth (nothing
    is ever dropped)."""

    policy: Literal["auto", "block", "drop_oldest"] = "auto"
    size: int = Field(default=4, ge=1)


class ReconnectConfig(_Strict):
    initial_s: float = Field(default=0.5, gt=0)
    max_s: float = Field(default=10.0, gt=0)
    attempts: int = Field(default=0, ge=0)  # 0: keep trying until stopped
    open_timeout_s: float = Field(default=5.0, gt=0)


class SourceConfig(_Strict):
    uri: str
    id: str | None = None  # default: derived from the URI (file stem, camera0, synth7, ...)
    backend: Literal["auto", "pyav", "opencv", "gstreamer"] = "auto"
    fps: float | None = Field(default=None, gt=0)  # image folders only: the rate that gives their pts
    loop: bool = False
    buffer: BufferConfig = BufferConfig()
    reconnect: ReconnectConfig = ReconnectConfig()

    def options(self) -> SourceOptions:
        r = self.reconnect
        return SourceOptions(backend=self.backend, fps=self.fps, loop=self.loop, reconnect_initial_s=r.initial_s,
                             reconnect_max_s=r.max_s, reconnect_attempts=r.attempts,
                             open_timeout_s=r.open_timeout_s)


class ModelConfig(_Strict):
    model: str = DEFAULT_SEMANTIC_MODEL  # name in engines/ or path to a model card
    # ONNX Runtime intra-op threads. 0: one per physical core minus one (at least one), leaving a core to
    # capture, drawing and encoding, which run beside the model in their own threads.
    threads: int = Field(default=0, ge=0)
    providers: list[str] = ["cpu"]  # best first: tensorrt, cuda, cpu (those not installed are skipped)
    resize: Literal["nearest", "bilinear"] = "nearest"  # semantic: how label maps get back to frame size
    # Semantic: pixels whose top class has a softmax probability below this become void (255).
    # Instance: detections scoring below this are dropped (default: the card's postprocess.score_threshold).
    threshold: float | None = Field(default=None, ge=0, le=1)
    # Instance models: run on every Nth frame only (DeepStream's `interval`); the tracker predicts the
    # objects on the frames in between, so every frame still has instances.
    every: int = Field(default=1, ge=1)


class VideoSinkConfig(_Strict):
    path: str = "{out}/{source}.mp4"
    crf: int = Field(default=23, ge=0, le=51)
    alpha: float = Field(default=0.5, ge=0, le=1)  # mask blending


class JsonlSinkConfig(_Strict):
    path: str = "{out}/{source}.jsonl"


class MaskSinkConfig(_Strict):
    dir: str = "{out}/masks"


class SinksConfig(_Strict):
    """Each sink is on when its section is present (``video: {}`` takes the defaults); ``null`` turns it
    off. Paths may use ``{out}`` (the output directory) and ``{source}`` (the source id)."""

    video: VideoSinkConfig | None = None
    jsonl: JsonlSinkConfig | None = None
    masks: MaskSinkConfig | None = None


class PipelineConfig(_Strict):
    sources: list[SourceConfig] = Field(min_length=1)
    models: dict[Literal["semantic", "instance"], ModelConfig] = Field(min_length=1)
    # Fuse the semantic net's stuff with the instance net's things into one panoptic map (both needed).
    panoptic: PanopticConfig | None = None
    # Persistent ids for the instance model's detections (on by default with an instance model; null: off).
    tracker: TrackerConfig | None = TrackerConfig()
    # Counts, unique objects, line crossings, zones and the road summary (null: off). Lines and zones need
    # the tracker's ids; counts and the road summary do not.
    analytics: AnalyticsConfig | None = AnalyticsConfig()
    sinks: SinksConfig = SinksConfig()
    out: str = "out/run"
    max_frames: int | None = Field(default=None, gt=0)  # per source
    queue_size: int = Field(default=2, ge=1)  # between the stages after the source

    @model_validator(mode="after")
    def _panoptic_needs_both_models(self) -> PipelineConfig:
        if self.panoptic is not None and set(self.models) != {"semantic", "instance"}:
            raise ValueError("panoptic fusion needs both models.semantic and models.instance")
        return self

    @model_validator(mode="after")
    def _skipping_frames_needs_the_tracker(self) -> PipelineConfig:
        semantic, instance = self.models.get("semantic"), self.models.get("instance")
        if semantic is not None and semantic.every != 1:
            raise ValueError("models.semantic.every: only instance models can skip frames (a semantic map "
                             "cannot be predicted)")
        if instance is not None and instance.every > 1 and self.tracker is None:
            raise ValueError("models.instance.every > 1 needs the tracker, which predicts the skipped frames")
        return self

    @model_validator(mode="after")
    def _distinct_source_ids(self) -> PipelineConfig:
        ids = [s.id for s in self.sources if s.id]
        if len(ids) != len(set(ids)):
            raise ValueError(f"source ids must be distinct, got {ids}")
        return self


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, where: str, key: str = "") -> Any:
    """``${VAR}`` and ``${VAR:-default}`` in every string of ``value``, from os.environ."""
    if isinstance(value, dict):
        return {k: expand_env(v, where, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, where, f"{key}.{i}") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(m: re.Match) -> str:
        name, default = m.group(1), m.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise EdgeSegError(f"{where}: key '{key}': environment variable {name} is not set "
                           f"(write ${{{name}:-default}} to give a default)")

    return _VAR.sub(substitute, value)


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """``a.b.c=value`` sets data['a']['b']['c'] (list items by index: ``sources.0.uri=...``)."""
    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise EdgeSegError(f"--set '{assignment}': expected KEY=VALUE, e.g. models.semantic.threads=1")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    parts = key.strip().split(".")
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise EdgeSegError(f"--set '{assignment}': key '{'.'.join(parts[:depth + 1])}': no such list item")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = {}
                node = node[part]
        else:
            raise EdgeSegError(f"--set '{assignment}': key '{'.'.join(parts[:depth])}' is not a section")


def _normalise_sources(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    """``source: {...}`` or ``source: URI`` is shorthand for a one-item ``sources`` list, whose items
    may also be plain URIs."""
    if "source" in raw:
        if "sources" in raw:
            raise EdgeSegError(f"{path}: key 'source': give either 'source' or 'sources', not both")
        raw["sources"] = [raw.pop("source")]
    if isinstance(raw.get("sources"), list):
        raw["sources"] = [{"uri": s} if isinstance(s, str) else s for s in raw["sources"]]
    return raw


def load_config(path: str | os.PathLike, overrides: list[str] = ()) -> PipelineConfig:
    """Read, override, expand and validate (see the module docstring)."""
    path = Path(path)
    raw = _normalise_sources(read_mapping(path, "config"), path)
    for assignment in overrides:
        # `source.X` addresses the single source of a one-source config, as users write it in the file.
        apply_override(raw, re.sub(r"^source\.", "sources.0.", assignment.strip()))
    raw = expand_env(raw, str(path))
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as e:
        raise EdgeSegError(validation_message(path, e)) from None


def find_config(name_or_path: str) -> Path:
    """A config by path, or by name among the repo's configs/ (``demo`` -> configs/demo.yaml)."""
    path = Path(name_or_path)
    if path.is_file() or path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return path
    candidate = REPO_CONFIGS / f"{name_or_path}.yaml"
    return candidate if candidate.is_file() else path
