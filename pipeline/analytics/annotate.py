"""Drawing the analytics on the annotated video: ``LineZoneAnnotator().annotate(scene, result)``.

Everything that depends on the geometry alone (the zones' tint image and pixel mask over their bounding
rectangle, outlines, line ends, arrows, label positions, colours) is computed once per
:class:`~pipeline.analytics.geometry.FrameGeometry`, i.e. once per frame size; a frame then costs one
blend over the zones' rectangle and a few OpenCV drawing calls for the counts that change.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.analytics.geometry import FrameGeometry
from pipeline.annotate import distinct_colours
from pipeline.types import FrameResult

_SHIFT = 4  # fixed-point bits for OpenCV's drawing calls: sub-pixel vertices, as the zones are rasterised
_ONE = 1 << _SHIFT


def _fixed(points: np.ndarray) -> np.ndarray:
    """Continuous pixel coordinates -> OpenCV's fixed-point pixel-centre coordinates."""
    return np.round((np.asarray(points, np.float64) - 0.5) * _ONE).astype(np.int32)


@dataclass(frozen=True)
class _Overlay:
    geometry: FrameGeometry
    roi: tuple[int, int, int, int] | None  # x0, y0, x1, y1 of the zones' bounding rectangle
    tint: np.ndarray  # (h, w, 3) uint8 BGR: each zone's colour over its pixels in the roi
    mask: np.ndarray  # (h, w, 1) bool: pixels of any zone in the roi
    outlines: list[np.ndarray]  # per zone, fixed-point vertices
    zone_labels: list[np.ndarray]  # per zone, its topmost vertex: the label's top-left corner
    line_ends: list[tuple[tuple[int, int], tuple[int, int]]]  # per line, fixed-point A and B
    arrows: list[tuple[tuple[int, int], tuple[int, int]]]  # per line, fixed-point tail and tip of the "in" arrow
    line_labels: list[tuple[np.ndarray, np.ndarray]]  # per line, its midpoint and "in" normal: the label goes
    # just beside the midpoint on the "out" side, where the arrow is not
    zone_colours: list[tuple[int, int, int]]
    line_colours: list[tuple[int, int, int]]


class LineZoneAnnotator:
    """Zones as translucent polygons labelled with their name and occupancy; lines with an arrow pointing
    the "in" way, labelled with their name and in/out counts. Reads ``result.analytics``; draws nothing
    when it is None."""

    FONT = cv2.FONT_HERSHEY_SIMPLEX

    def __init__(self, alpha: float = 0.3, thickness: int = 2, scale: float = 0.45):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.alpha = alpha
        self.thickness = thickness
        self.scale = scale
        self._overlay: _Overlay | None = None

    def overlay(self, geometry: FrameGeometry) -> _Overlay:
        """The precomputed drawing for this geometry (rebuilt only when the geometry object changes)."""
        if self._overlay is None or self._overlay.geometry is not geometry:
            self._overlay = self._build(geometry)
        return self._overlay

    def annotate(self, scene: np.ndarray, result: FrameResult) -> np.ndarray:
        analytics = result.analytics
        if analytics is None:
            return scene
        ov = self.overlay(analytics.geometry)
        if (scene.shape[1], scene.shape[0]) != ov.geometry.size:
            raise ValueError(f"analytics geometry {ov.geometry.size[0]}x{ov.geometry.size[1]} on a "
                             f"{scene.shape[1]}x{scene.shape[0]} scene")
        if ov.roi is not None:
            x0, y0, x1, y1 = ov.roi
            region = scene[y0:y1, x0:x1]
            blended = cv2.addWeighted(region, 1.0 - self.alpha, ov.tint, self.alpha, 0.0)
            np.copyto(region, blended, where=ov.mask)
        for outline, colour in zip(ov.outlines, ov.zone_colours):
            cv2.polylines(scene, [outline], True, colour, self.thickness, cv2.LINE_AA, _SHIFT)
        for (a, b), (tail, tip), colour in zip(ov.line_ends, ov.arrows, ov.line_colours):
            cv2.line(scene, a, b, colour, self.thickness, cv2.LINE_AA, _SHIFT)
            cv2.arrowedLine(scene, tail, tip, colour, self.thickness, cv2.LINE_AA, _SHIFT, tipLength=0.35)
        for zone, corner, colour in zip(analytics.zones, ov.zone_labels, ov.zone_colours):
            self._tag(scene, f"{zone.name}: {zone.total_occupancy}", corner, None, colour)
        for line, (mid, normal), colour in zip(analytics.lines, ov.line_labels, ov.line_colours):
            self._tag(scene, f"{line.name} in {line.total_in} out {line.total_out}", mid, normal, colour)
        return scene

    def _build(self, geometry: FrameGeometry) -> _Overlay:
        width, height = geometry.size
        n_zones, n_lines = len(geometry.zone_polygons), len(geometry.line_a)
        colours = [tuple(int(v) for v in c) for c in distinct_colours(n_zones + n_lines)]
        roi, tint, mask = None, np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0, 1), bool)
        if n_zones:
            any_zone = geometry.zone_bits != 0
            ys, xs = np.nonzero(any_zone.any(axis=1))[0], np.nonzero(any_zone.any(axis=0))[0]
            if len(ys):
                roi = (int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1)
                x0, y0, x1, y1 = roi
                tint = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
                for z in range(n_zones):  # later zones on top where zones overlap
                    tint[geometry.zone_mask(z)[y0:y1, x0:x1]] = colours[z]
                mask = any_zone[y0:y1, x0:x1, None]
        normal, arrow = geometry.line_normal, max(15.0, 0.06 * min(width, height))
        mid = (geometry.line_a + geometry.line_b) / 2
        return _Overlay(
            geometry=geometry, roi=roi, tint=tint, mask=mask,
            outlines=[_fixed(p) for p in geometry.zone_polygons],
            zone_labels=[p[np.argmin(p[:, 1])] for p in geometry.zone_polygons],
            line_ends=[(tuple(_fixed(a).tolist()), tuple(_fixed(b).tolist()))
                       for a, b in zip(geometry.line_a, geometry.line_b)],
            arrows=[(tuple(_fixed(m).tolist()), tuple(_fixed(m + arrow * n).tolist())) for m, n in zip(mid, normal)],
            line_labels=list(zip(mid, normal)),
            zone_colours=colours[:n_zones], line_colours=colours[n_zones:],
        )

    def _tag(self, scene: np.ndarray, text: str, at: np.ndarray, away: np.ndarray | None,
             colour: tuple[int, int, int]) -> None:
        """Text on a filled tag of ``colour``, kept in the frame: its top-left corner at ``at``, or, given a
        unit vector ``away``, beside ``at`` on the side opposite to it, 4 px off whatever its orientation."""
        (tw, th), base = cv2.getTextSize(text, self.FONT, self.scale, 1)
        pad = 2
        w, h = tw + 2 * pad, th + base + 2 * pad
        x, y = float(at[0]), float(at[1])
        if away is not None:
            reach = 4 + abs(away[0]) * w / 2 + abs(away[1]) * h / 2
            x, y = x - away[0] * reach - w / 2, y - away[1] * reach - h / 2
        x = int(round(max(0, min(x, scene.shape[1] - w))))
        y = int(round(max(0, min(y, scene.shape[0] - h))))
        luma = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
        cv2.rectangle(scene, (x, y), (x + w, y + h), colour, thickness=-1)
        cv2.putText(scene, text, (x + pad, y + pad + th), self.FONT, self.scale,
                    (0, 0, 0) if luma > 140 else (255, 255, 255), 1, cv2.LINE_AA)
