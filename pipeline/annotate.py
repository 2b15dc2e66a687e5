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

from pipeline.types import FrameResult, Instances, SemanticMap


class Annotator(Protocol):
    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray: ...


def distinct_colours(n: int) -> np.ndarray:
    """``n`` saturated BGR colours whose hues step by the golden ratio around the colour wheel, so that
    neighbouring indices (consecutive track ids, say) get far-apart hues and no colour repeats."""
    if n == 0:  # OpenCV rejects an empty image
        return np.zeros((0, 3), np.uint8)
    hues = (np.arange(n) * 0.6180339887 % 1.0 * 180).astype(np.uint8)  # OpenCV's 8-bit hue is 0..179
    values = np.where(np.arange(n) % 2, 200, 255).astype(np.uint8)  # alternate brightness: more contrast
    hsv = np.stack([hues, np.full(n, 230, np.uint8), values], axis=1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]


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


class InstanceAnnotator:
    """Outlines each instance mask and labels it ``"Car 0.92 #17"`` at its box's top-left corner.

    Colour: per track id when the instances carry them, so that an object keeps its colour from frame
    to frame, else per class. Contours come from one ``cv2.findContours`` per instance on its mask
    cropped to its box (the box is a small part of the frame; mask pixels outside it are not outlined),
    holes included (an occluded car's outline shows the pedestrian in front of it). Instances are drawn
    in ascending score order, so where outlines and labels cross, the more confident instance is on top.
    The colour table and each colour's readable text colour are computed once."""

    FONT = cv2.FONT_HERSHEY_SIMPLEX

    def __init__(self, thickness: int = 2, labels: bool = True, scale: float = 0.4, palette_size: int = 64):
        self.thickness = thickness
        self.labels = labels
        self.scale = scale
        self.colours = distinct_colours(palette_size)  # BGR, one row per colour
        luma = self.colours.astype(np.float32) @ np.array([0.114, 0.587, 0.299], np.float32)  # BGR weights
        self._draw_colours = [tuple(c) for c in self.colours.tolist()]  # what OpenCV's drawing calls take
        self._text_colours = [(0, 0, 0) if y > 140 else (255, 255, 255) for y in luma.tolist()]

    def colour_indices(self, instances: Instances) -> np.ndarray:
        """Row of the colour table for each instance: from its track id, else from its class."""
        keys = instances.track_ids if instances.track_ids is not None else instances.classes
        return np.asarray(keys, np.int64) % len(self.colours)

    def label(self, instances: Instances, i: int) -> str:
        """``"Car 0.92 #17"``; without the id where there is none (no tracker, or -1: not a confirmed track)."""
        text = f"{instances.class_names[instances.classes[i]]} {instances.scores[i]:.2f}"
        if instances.track_ids is None or instances.track_ids[i] < 0:
            return text
        return f"{text} #{instances.track_ids[i]}"

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        instances = result.instances
        if instances is None or not len(instances):
            return scene
        height, width = scene.shape[:2]
        if instances.masks.shape[1:] != (height, width):
            raise ValueError(f"instance masks {instances.masks.shape[2]}x{instances.masks.shape[1]} on a "
                             f"{width}x{height} scene")
        # pixel-edge boxes -> the integer pixel ranges they cover, clipped to the frame
        lo = np.floor(instances.boxes[:, :2]).astype(np.int64)
        hi = np.ceil(instances.boxes[:, 2:]).astype(np.int64)
        x0, x1 = np.clip(lo[:, 0], 0, width), np.clip(hi[:, 0], 0, width)
        y0, y1 = np.clip(lo[:, 1], 0, height), np.clip(hi[:, 1], 0, height)
        rows = self.colour_indices(instances)
        order = np.argsort(instances.scores, kind="stable")
        for i in order:
            if x1[i] <= x0[i] or y1[i] <= y0[i]:
                continue
            crop = instances.masks[i, y0[i]:y1[i], x0[i]:x1[i]].view(np.uint8)
            contours, _ = cv2.findContours(crop, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE,
                                           offset=(int(x0[i]), int(y0[i])))
            cv2.drawContours(scene, contours, -1, self._draw_colours[rows[i]], self.thickness, cv2.LINE_8)
        if self.labels:
            for i in order:
                self._draw_label(scene, self.label(instances, i), int(x0[i]), int(y0[i]), rows[i])
        return scene

    def _draw_label(self, scene: np.ndarray, text: str, x: int, y: int, row: int) -> None:
        """Text on a filled tag of the instance's colour, just above the box (inside it at the frame's top),
        shifted left where it would leave the frame."""
        (tw, th), base = cv2.getTextSize(text, self.FONT, self.scale, 1)
        pad = 2
        tag_h = th + base + 2 * pad
        x = max(0, min(x, scene.shape[1] - tw - 2 * pad))
        top = y - tag_h if y >= tag_h else y
        cv2.rectangle(scene, (x, top), (x + tw + 2 * pad, top + tag_h), self._draw_colours[row], thickness=-1)
        cv2.putText(scene, text, (x + pad, top + pad + th), self.FONT, self.scale, self._text_colours[row],
                    1, cv2.LINE_AA)


class InfoOverlay:
    """Text in the top-left corner: frame index and throughput; the instance count with the ``top`` classes
    by count (when the frame has instances); the distinct tracked objects seen so far per class (when the
    analytics ran and a tracker gave ids); the ``top`` classes by pixel coverage with their colour
    swatches. On a translucent dark panel so it stays readable on any scene.

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
        if result.instances is not None:
            counts = sorted(result.instances.counts.items(), key=lambda kv: -kv[1])[: self.top]
            total = len(result.instances)
            rows.append((f"{total} instance{'' if total == 1 else 's'}"
                         + (": " + ", ".join(f"{name} {n}" for name, n in counts) if counts else ""), None))
        if result.analytics is not None and result.analytics.unique:
            unique = sorted(result.analytics.unique.items(), key=lambda kv: -kv[1])[: self.top]
            rows.append(("seen: " + ", ".join(f"{name} {n}" for name, n in unique), None))
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
