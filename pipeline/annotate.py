"""Annotators draw results onto an image: ``annotator.annotate(scene, result) -> scene``.

The supervision-style calling convention lets a sink chain any annotators over one copy of the
frame. Annotators draw in place on ``scene`` (the caller passes a copy when it wants to keep the
frame) with OpenCV only; anything that depends on the palette alone is computed once.
"""

from __future__ import annotations

import time
from typing import Protocol

import cv2
import numpy as np

from pipeline.types import FrameResult, SemanticMap


class Annotator(Protocol):
    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray: ...


class SemanticAnnotator:
    """Blends the class colours over the scene: ``(1 - alpha) * scene + alpha * colour``.

    Colours come from a 256-entry BGR lookup table (labels index it in one gather); labels past the
    palette (a void output channel, say) get black. The table is rebuilt only when a map brings a
    different palette, which decoders share across all their frames."""

    def __init__(self, alpha: float = 0.5):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.alpha = alpha
        self._palette: np.ndarray | None = None
        self._lut = np.zeros((256, 3), np.uint8)

    def lut(self, semantic: SemanticMap) -> np.ndarray:
        """The BGR table for this map's palette."""
        if self._palette is not semantic.palette:
            self._lut = np.zeros((256, 3), np.uint8)
            self._lut[: len(semantic.palette)] = semantic.palette[:, ::-1]
            self._palette = semantic.palette
        return self._lut

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        if result.semantic is None:
            return scene
        colours = np.take(self.lut(result.semantic), result.semantic.labels, axis=0)  # 6x faster than lut[labels]
        if colours.shape != scene.shape:
            raise ValueError(f"label map {colours.shape[1]}x{colours.shape[0]} on a "
                             f"{scene.shape[1]}x{scene.shape[0]} scene")
        return cv2.addWeighted(scene, 1.0 - self.alpha, colours, self.alpha, 0.0, dst=scene)


class InfoOverlay:
    """Text in the top-left corner: frame index, throughput, and the ``top`` classes by pixel coverage
    with their colour swatches, on a translucent dark panel so it stays readable on any scene.

    Throughput is the wall-clock rate of annotate() calls (an exponential moving average), i.e. the
    rate the pipeline delivers frames to its sinks, not the model's speed alone."""

    FONT = cv2.FONT_HERSHEY_SIMPLEX

    def __init__(self, top: int = 4, scale: float = 0.45, smoothing: float = 0.9):
        self.top = top
        self.scale = scale
        self.smoothing = smoothing
        self.line = int(round(22 * scale / 0.45))
        self._last: float | None = None
        self._fps: float | None = None

    def _tick(self) -> float | None:
        now = time.perf_counter()
        if self._last is not None and now > self._last:
            fps = 1.0 / (now - self._last)
            self._fps = fps if self._fps is None else self.smoothing * self._fps + (1 - self.smoothing) * fps
        self._last = now
        return self._fps

    def lines(self, result: FrameResult, fps: float | None) -> list[tuple[str, tuple[int, int, int] | None]]:
        """(text, BGR swatch colour or None) per line."""
        head = f"frame {result.frame.index}" + (f"  {fps:.1f} fps" if fps else "")
        rows: list[tuple[str, tuple[int, int, int] | None]] = [(head, None)]
        semantic = result.semantic
        if semantic is not None:
            coverage = sorted(semantic.coverage.items(), key=lambda kv: -kv[1])[: self.top]
            for name, share in coverage:
                rgb = semantic.palette[semantic.classes.index(name)]
                rows.append((f"{name} {share * 100:.0f}%", (int(rgb[2]), int(rgb[1]), int(rgb[0]))))
        return rows

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        rows = self.lines(result, self._tick())
        pad, swatch = 6, self.line - 8
        width = max(cv2.getTextSize(text, self.FONT, self.scale, 1)[0][0] for text, _ in rows) + 3 * pad + swatch
        height = len(rows) * self.line + pad
        panel = scene[:height, :width]  # a view: darkening it darkens the scene
        np.multiply(panel, 0.4, out=panel, casting="unsafe")
        for i, (text, colour) in enumerate(rows):
            baseline = (i + 1) * self.line
            x = pad
            if colour is not None:
                cv2.rectangle(scene, (x, baseline - swatch), (x + swatch, baseline), colour, thickness=-1)
                x += swatch + pad
            cv2.putText(scene, text, (x, baseline), self.FONT, self.scale, (255, 255, 255), 1, cv2.LINE_AA)
        return scene
