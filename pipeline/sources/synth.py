"""The synthetic road world as a source: ``synth://?seed=3&size=640x360&fps=30&frames=300``.

Lets the whole pipeline run, be tested and be demonstrated with no camera, file or network, and
with frames that are the same on every machine. Every query key has a default; ``frames=0`` runs
until stopped. A bad key or value is named in a one-line error together with the URI.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from pipeline.errors import EdgeSegError
from pipeline.sources.base import SourceOptions, SourceStats
from pipeline.sources.passes import frames_in_passes
from pipeline.synth.world import SynthWorld
from pipeline.types import Frame


@dataclass(frozen=True)
class SynthParams:
    seed: int = 0
    size: tuple[int, int] = (640, 360)
    fps: float = 30.0
    frames: int = 300  # 0: endless

    @classmethod
    def parse(cls, uri: str) -> SynthParams:
        parts = urlsplit(uri)
        if parts.netloc or parts.path not in ("", "/"):
            raise EdgeSegError(f"{uri}: settings go in the query, e.g. synth://?seed=3&size=640x360&fps=30&frames=300")
        try:
            pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError:
            raise EdgeSegError(f"{uri}: malformed query '{parts.query}' (expected key=value pairs joined by &)") from None
        values: dict[str, object] = {}
        for key, text in pairs:
            if key not in _PARSERS:
                raise EdgeSegError(f"{uri}: unknown key '{key}' (known: {', '.join(_PARSERS)})")
            if key in values:
                raise EdgeSegError(f"{uri}: key '{key}' given twice")
            parse, expected = _PARSERS[key]
            value = parse(text)
            if value is None:
                raise EdgeSegError(f"{uri}: bad value for '{key}': '{text}' (expected {expected})")
            values[key] = value
        return cls(**values)


def _int_at_least(low: int) -> Callable[[str], int | None]:
    return lambda text: int(text) if re.fullmatch(r"\d+", text) and int(text) >= low else None


def _size(text: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m and min(int(m.group(1)), int(m.group(2))) >= 16 else None


def _fps(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


_PARSERS = {
    "seed": (_int_at_least(0), "an integer >= 0"),
    "size": (_size, "WIDTHxHEIGHT, each >= 16, e.g. 640x360"),
    "fps": (_fps, "a positive number"),
    "frames": (_int_at_least(0), "an integer >= 0; 0 runs until stopped"),
}


class SynthSource:
    live = False

    def __init__(self, uri: str, source_id: str, options: SourceOptions = SourceOptions()):
        self.uri, self.source_id, self.options = uri, source_id, options
        self.params = SynthParams.parse(uri)
        self.stats = SourceStats()
        self.fps = self.params.fps
        endless = self.params.frames == 0 or options.loop
        self.length = None if endless else self.params.frames
        self._world = SynthWorld(self.params.seed, self.params.size, self.params.fps)

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        return frames_in_passes(self._one_pass, loop=self.options.loop, stop=stop, source_id=self.source_id,
                                stats=self.stats, frame_step=1 / self.fps)

    def close(self) -> None:
        """Nothing to release: the world is plain memory."""

    def _one_pass(self) -> Iterator[tuple[np.ndarray, float]]:
        count = range(self.params.frames) if self.params.frames else itertools.count()
        for i in count:
            yield self._world.render(i).frame.image, i / self.fps
