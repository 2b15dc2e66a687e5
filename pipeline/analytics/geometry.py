"""Lines and zones resolved to pixels for one frame size, and the anchor points of boxes.

Pixel coordinates are continuous, as boxes are (``x1 y1 x2 y2`` pixel edges): pixel ``(i, j)`` spans
``[i, i+1) x [j, j+1)``, a normalised point ``(u, v)`` is ``(u * width, v * height)``.

Zones are rasterised once per frame size into one image whose bit ``z`` marks the pixels of zone ``z``
(a pixel belongs to a zone when its centre lies inside the polygon; a centre exactly on an edge goes to
one side only, so that zones sharing an edge split its pixels): a zone test per object is then one
gather at its anchor's pixel, whatever the polygon's complexity, and overlapping zones cost nothing
extra. A second such image marks the pixels within each zone's hysteresis distance of it, which is
where an object already inside still counts as inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.analytics.config import AnalyticsConfig, Point, Units

# (fx, fy): the anchor is (x1 + fx * (x2 - x1), y1 + fy * (y2 - y1))
ANCHOR_FRACTIONS: dict[str, tuple[float, float]] = {
    "bottom_center": (0.5, 1.0), "center": (0.5, 0.5), "top_center": (0.5, 0.0),
    "center_left": (0.0, 0.5), "center_right": (1.0, 0.5),
    "bottom_left": (0.0, 1.0), "bottom_right": (1.0, 1.0), "top_left": (0.0, 0.0), "top_right": (1.0, 0.0),
}


def anchor_points(boxes: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """(N, K, 2) float64: for each box, the K anchors whose (fx, fy) are the rows of ``fractions`` (K, 2)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    origin = boxes[:, None, :2]
    extent = (boxes[:, 2:] - boxes[:, :2])[:, None, :]
    return origin + fractions[None] * extent


def to_pixels(points: tuple[Point, ...], units: Units, width: int, height: int) -> np.ndarray:
    """(K, 2) float64 pixel coordinates."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    return pts * np.array([width, height], np.float64) if units == "norm" else pts


def _bits_dtype(n: int) -> type:
    return next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if np.iinfo(t).bits >= max(n, 1))


@dataclass(frozen=True, eq=False)
class FrameGeometry:
    """Everything about the configured lines and zones that depends on the frame size only. One object per
    size: annotators cache their overlays on its identity."""

    size: tuple[int, int]  # (width, height)
    line_a: np.ndarray  # (L, 2) pixels
    line_b: np.ndarray  # (L, 2)
    line_direction: np.ndarray  # (L, 2) B - A
    # (L, 2) unit vectors pointing to the "in" side: the right-hand side of A -> B on the screen, i.e. the
    # direction rotated clockwise on an image whose y axis points down
    line_normal: np.ndarray
    line_hysteresis: np.ndarray  # (L,) pixels
    line_anchor: np.ndarray  # (L, 2) anchor fractions
    zone_polygons: tuple[np.ndarray, ...]  # Z x (K, 2) pixels
    zone_anchor: np.ndarray  # (Z, 2) anchor fractions
    zone_bits: np.ndarray  # (H, W) unsigned: bit z set where zone z is
    zone_outer_bits: np.ndarray  # (H, W): bit z set within zone z's hysteresis distance of it

    def zone_mask(self, z: int) -> np.ndarray:
        """(H, W) bool: the pixels of zone ``z``."""
        return (self.zone_bits >> self.zone_bits.dtype.type(z)) & 1 == 1

    def in_zones(self, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, Z) bool twice: whether each object's anchor (``anchors`` (N, Z, 2), one per zone) is in each
        zone, and whether it is within the zone's hysteresis distance of it."""
        n, z = anchors.shape[:2]
        if n == 0 or z == 0:
            return np.zeros((n, z), bool), np.zeros((n, z), bool)
        width, height = self.size
        cols = np.clip(anchors[..., 0], 0, width - 1).astype(np.intp)  # truncation is floor here: >= 0
        rows = np.clip(anchors[..., 1], 0, height - 1).astype(np.intp)
        shifts = np.arange(z, dtype=self.zone_bits.dtype)
        inner = (self.zone_bits[rows, cols] >> shifts) & 1
        outer = (self.zone_outer_bits[rows, cols] >> shifts) & 1
        return inner.astype(bool), outer.astype(bool)


def resolve(config: AnalyticsConfig, width: int, height: int) -> FrameGeometry:
    """Lines and zones of ``config`` for a ``width`` x ``height`` frame."""
    lines = config.lines
    ends = [to_pixels(line.points, line.units, width, height) for line in lines]
    polygons = tuple(to_pixels(zone.polygon, zone.units, width, height) for zone in config.zones)
    dtype = _bits_dtype(len(polygons))
    bits = np.zeros((height, width), dtype)
    outer_bits = np.zeros((height, width), dtype)
    for z, (zone, polygon) in enumerate(zip(config.zones, polygons)):
        inside = _rasterise(polygon, width, height)
        bit = dtype(1) << dtype(z)
        bits[inside] |= bit
        outer_bits[_within(inside, zone.hysteresis(width, height))] |= bit
    line_a = np.array([e[0] for e in ends], np.float64).reshape(-1, 2)
    line_b = np.array([e[1] for e in ends], np.float64).reshape(-1, 2)
    direction = line_b - line_a
    return FrameGeometry(
        size=(width, height),
        line_a=line_a,
        line_b=line_b,
        line_direction=direction,
        line_normal=np.stack([-direction[:, 1], direction[:, 0]], axis=1) / np.linalg.norm(
            direction, axis=1, keepdims=True),
        line_hysteresis=np.array([line.hysteresis(width, height) for line in lines], np.float64),
        line_anchor=np.array([ANCHOR_FRACTIONS[line.anchor] for line in lines], np.float64).reshape(-1, 2),
        zone_polygons=polygons,
        zone_anchor=np.array([ANCHOR_FRACTIONS[zone.anchor] for zone in config.zones], np.float64).reshape(-1, 2),
        zone_bits=bits,
        zone_outer_bits=outer_bits,
    )


def _rasterise(polygon: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W) bool: pixels whose centre is inside ``polygon`` (even-odd rule), exactly. A crossing-number
    test over the polygon's bounding box, one vectorised pass per edge, once per frame size (OpenCV's
    fillPoly also fills pixels that the outline merely touches, up to a pixel outside)."""
    mask = np.zeros((height, width), bool)
    x0, y0 = (max(0, int(np.floor(v))) for v in polygon.min(axis=0))
    x1, y1 = min(width, int(np.ceil(polygon[:, 0].max()))), min(height, int(np.ceil(polygon[:, 1].max())))
    if x1 <= x0 or y1 <= y0:
        return mask
    xs, ys = np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5
    inside = mask[y0:y1, x0:x1]  # a view: filled in place
    for (ax, ay), (bx, by) in zip(polygon, np.roll(polygon, -1, axis=0)):
        rows = np.flatnonzero((ys > ay) != (ys > by))  # pixel rows whose centre line this edge crosses
        if rows.size:
            x_cross = ax + (ys[rows] - ay) * (bx - ax) / (by - ay)
            inside[rows] ^= xs[None, :] < x_cross[:, None]
    return mask


def _within(mask: np.ndarray, distance: float) -> np.ndarray:
    """(H, W) bool: pixels at most ``distance`` pixels (Euclidean, centre to centre) from a pixel of ``mask``.
    The distance transform runs on the mask's bounding box grown by ``distance`` only."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if distance <= 0 or not rows.size:
        return mask
    grow = int(np.ceil(distance))
    y0, y1 = max(0, rows[0] - grow), min(mask.shape[0], rows[-1] + grow + 1)
    x0, x1 = max(0, cols[0] - grow), min(mask.shape[1], cols[-1] + grow + 1)
    outside = (~mask[y0:y1, x0:x1]).view(np.uint8)
    near = np.zeros_like(mask)
    near[y0:y1, x0:x1] = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= distance
    return near
