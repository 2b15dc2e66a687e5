"""Foveation: a fixed warp that gives one band of the frame more of the model's input pixels.

A road camera sees its small, far objects in a band around the horizon, and a real-time model's input is
too small for them (README "Small objects"); a larger input costs time in proportion to all its pixels.
Warping the frame so that the band is magnified and the sky and the near road are squeezed spends the
same input pixels where the small objects are, as FOVEA (Thavamani et al., ICCV 2021) does with a fixed,
dataset-wide warp. The model's outputs are then in warped coordinates, and are mapped back to the frame.

The warp is separable: along each axis, source pixels inside the band weigh ``1 + gain``, those outside 1,
with logistic edges (``EDGE`` of the side wide, so that no seam or fold appears), and each source pixel is
given its share of the frame's width (height). Both directions are exact lookups of one monotonic
function per axis, computed once per frame size:

- :meth:`Foveation.sample_maps` composes the warp with the stretch to the model's input into one
  ``cv2.remap`` (the preprocessor's resize, at about its cost);
- :meth:`Foveation.unwarp` gathers each output map back into frame pixels (every source pixel reads the
  warped pixel its centre lands in: a nearest-neighbour lookup, inside each mask's extent only) and maps
  box edges through the inverse function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np

from pipeline.decoders import Decoder
from pipeline.modelcard import FoveaSpec, InputSpec
from pipeline.types import Instances, SemanticMap

EDGE = 1 / 45  # logistic width of the band's edges, as a fraction of the side


@dataclass(frozen=True)
class AxisWarp:
    """One axis of the warp for a side of ``n`` pixels: ``edges[k]`` is where source pixel edge k lands
    (0 -> 0, n -> n, increasing)."""

    edges: np.ndarray  # (n + 1,) float64

    @classmethod
    def band(cls, n: int, band: tuple[float, float], gain: float) -> AxisWarp:
        t = (np.arange(n) + 0.5) / n
        inside = 1 / (1 + np.exp(-(t - band[0]) / EDGE)) / (1 + np.exp((t - band[1]) / EDGE))
        cumulative = np.concatenate([[0.0], np.cumsum(1 + gain * inside)])
        return cls(cumulative * (n / cumulative[-1]))

    @property
    def size(self) -> int:
        return len(self.edges) - 1

    def to_source(self, warped: np.ndarray) -> np.ndarray:
        """Source coordinates (pixel-edge units) of warped ones."""
        return np.interp(warped, self.edges, np.arange(self.size + 1.0))

    def warped_pixels(self) -> np.ndarray:
        """(n,) the warped pixel each source pixel's centre lands in: what the unwarp gathers."""
        centres = np.interp(np.arange(self.size) + 0.5, np.arange(self.size + 1.0), self.edges)
        return np.minimum(centres.astype(np.intp), self.size - 1)


class Foveation:
    """The warp of a :class:`FoveaSpec`, for any frame size (each size's tables computed once)."""

    def __init__(self, spec: FoveaSpec):
        self.spec = spec
        self._axes = lru_cache(maxsize=8)(self._make_axes)
        self._maps = lru_cache(maxsize=8)(self._make_maps)
        self._pixels = lru_cache(maxsize=8)(self._make_pixels)

    def _make_axes(self, size: tuple[int, int]) -> tuple[AxisWarp, AxisWarp]:
        return (AxisWarp.band(size[0], self.spec.cols, self.spec.col_gain),
                AxisWarp.band(size[1], self.spec.rows, self.spec.row_gain))

    def _make_maps(self, frame_size: tuple[int, int], out_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        def axis(warp: AxisWarp, n_out: int) -> np.ndarray:
            warped = (np.arange(n_out) + 0.5) * (warp.size / n_out)  # stretch, pixel centres as cv2.resize
            return (warp.to_source(warped) - 0.5).astype(np.float32)

        ax, ay = self._axes(frame_size)
        map_x, map_y = np.meshgrid(axis(ax, out_size[0]), axis(ay, out_size[1]))
        return cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)  # fixed point: remap's fast path

    def _make_pixels(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        ax, ay = self._axes(size)
        return ax.warped_pixels(), ay.warped_pixels()

    def sample_maps(self, frame_size: tuple[int, int], out_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """``cv2.remap`` maps taking a frame of ``frame_size`` (width, height) to the warped frame stretched to
        ``out_size``."""
        return self._maps(tuple(frame_size), tuple(out_size))

    def warp(self, image: np.ndarray, out_size: tuple[int, int] | None = None,
             interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """The warped image at ``out_size`` (default: the image's own size). Nearest-neighbour
        ``interpolation`` for label and id maps."""
        h, w = image.shape[:2]
        map_a, map_b = self.sample_maps((w, h), out_size or (w, h))
        return cv2.remap(image, map_a, map_b, interpolation, borderMode=cv2.BORDER_REPLICATE)

    def unwarp_instances(self, instances: Instances) -> Instances:
        """Instances decoded at the frame's size in warped coordinates -> the same in frame coordinates."""
        n, h, w = instances.masks.shape
        if n == 0:
            return instances
        ax, ay = self._axes((w, h))
        px, py = self._pixels((w, h))
        boxes = instances.boxes.astype(np.float64)
        boxes[:, 0::2] = ax.to_source(boxes[:, 0::2])
        boxes[:, 1::2] = ay.to_source(boxes[:, 1::2])
        cols, rows = instances.masks.any(axis=1), instances.masks.any(axis=2)
        masks = np.zeros(instances.masks.shape, bool)  # calloc: pages no mask touches stay unwritten
        for k in np.flatnonzero(cols.any(axis=1)):
            # source rows / columns whose warped pixel lies in the mask's extent (px, py never decrease)
            ys = np.flatnonzero(rows[k])
            xs = np.flatnonzero(cols[k])
            y0, y1 = np.searchsorted(py, ys[0]), np.searchsorted(py, ys[-1], side="right")
            x0, x1 = np.searchsorted(px, xs[0]), np.searchsorted(px, xs[-1], side="right")
            # two takes: a third faster than one np.ix_ gather
            masks[k, y0:y1, x0:x1] = instances.masks[k].take(py[y0:y1], axis=0).take(px[x0:x1], axis=1)
        return replace(instances, boxes=boxes.astype(np.float32), masks=masks)

    def unwarp_semantic(self, semantic: SemanticMap) -> SemanticMap:
        """A semantic map at the frame's size in warped coordinates -> the same in frame coordinates."""
        h, w = semantic.labels.shape
        px, py = self._pixels((w, h))
        confidence = None if semantic.confidence is None else semantic.confidence[np.ix_(py, px)]
        return replace(semantic, labels=semantic.labels[np.ix_(py, px)], confidence=confidence)

    def unwarp(self, result: Instances | SemanticMap) -> Instances | SemanticMap:
        if isinstance(result, Instances):
            return self.unwarp_instances(result)
        return self.unwarp_semantic(result)


def unwarping(decoder: Decoder, spec: InputSpec) -> Decoder:
    """``decoder`` itself when ``spec`` declares no fovea; else a decoder whose outputs (one SemanticMap or
    Instances per frame) are mapped back from the warp to the frame."""
    if spec.fovea is None:
        return decoder
    fovea = Foveation(spec.fovea)

    def decode(outputs: dict[str, np.ndarray], frame_sizes: Sequence[tuple[int, int]]) -> list:
        return [fovea.unwarp(result) for result in decoder(outputs, frame_sizes)]

    return decode
