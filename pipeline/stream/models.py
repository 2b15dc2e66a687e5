"""The models of a pipeline, loaded once and shared by every source's chain.

Each configured role (``semantic``, ``instance``) becomes a :class:`ModelStep`: its session, the input
spec its preprocessor follows, and its decoder. Preprocessing is keyed by the card's InputSpec, so two
models that take the same input share one preprocessed tensor per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline import runtime
from pipeline.decoders import Decoder, SemanticDecoder
from pipeline.errors import EdgeSegError
from pipeline.foveate import unwarping
from pipeline.modelcard import InputSpec, LoadedCard, find_card
from pipeline.preprocess import Preprocessor
from pipeline.runtime import ModelSession
from pipeline.runtime.onnxruntime import physical_cores
from pipeline.stream.config import ModelConfig
from pipeline.types import Frame, FrameResult


def pipeline_threads(requested: int) -> int:
    """Intra-op threads for a model inside the pipeline: ``requested``, or for 0 one per physical core
    minus one (at least one), leaving a core to capture, drawing and encoding."""
    return requested or max(1, physical_cores() - 1)


@dataclass
class ModelStep:
    role: str  # "semantic" | "instance"
    loaded: LoadedCard
    session: ModelSession
    decoder: Decoder  # outputs, frame sizes -> one SemanticMap / Instances per frame
    every: int = 1  # runs on frames whose index is a multiple of this (instance models may skip frames)

    def runs_on(self, index: int) -> bool:
        return index % self.every == 0

    @property
    def name(self) -> str:
        return self.loaded.card.name

    @property
    def spec(self) -> InputSpec:
        return self.loaded.card.input

    def decode(self, outputs: dict[str, np.ndarray], frame: Frame, result: FrameResult) -> None:
        """Put this model's part of the answer into ``result``."""
        setattr(result, "semantic" if self.role == "semantic" else "instances", self.decoder(outputs, [frame.size])[0])


def make_decoder(role: str, loaded: LoadedCard, cfg: ModelConfig) -> Decoder:
    """The card's decoder for ``role``, its outputs mapped back to the frame where the card warps its input."""
    if role == "semantic":
        return unwarping(SemanticDecoder(loaded.card, resize=cfg.resize, threshold=cfg.threshold), loaded.card.input)
    from pipeline.decoders.yolact import YolactDecoder  # the only instance decoder so far

    overrides = {} if cfg.threshold is None else {"score_threshold": cfg.threshold}
    return unwarping(YolactDecoder.from_card(loaded.card, **overrides), loaded.card.input)


def load_models(models: dict[str, ModelConfig], where: str = "config") -> list[ModelStep]:
    """Load every configured model once; ``where`` (the config file) names the source of a mistake."""
    steps = []
    for role, cfg in models.items():
        loaded = find_card(cfg.model)
        if loaded.card.task != role:
            raise EdgeSegError(f"{where}: key 'models.{role}.model': {loaded.card.name} is a "
                               f"{loaded.card.task} model, not {role}")
        session = runtime.load(loaded, threads=pipeline_threads(cfg.threads), providers=cfg.providers, spin=False)
        steps.append(ModelStep(role, loaded, session, make_decoder(role, loaded, cfg), cfg.every))
    return steps


def preprocessors(steps: list[ModelStep]) -> dict[InputSpec, Preprocessor]:
    """One preprocessor per distinct input spec among the models."""
    return {step.spec: Preprocessor(step.spec) for step in steps}
