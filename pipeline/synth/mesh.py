"""Drawable objects: world-space vertices plus a list of flat-colour drawing operations.

An object is drawn by projecting all its vertices at once and then issuing one OpenCV call per
operation into the image and (for labelled operations) the label map, with identical geometry, so
the ground truth matches the pixels exactly. Operations that only add detail inside an already
labelled surface (windows, lights, planks) are image-only and skip the label call.

Label values pack ``class + 256 * track_id`` into one int32 map, so the semantic and instance maps
of a frame come from a single drawing pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pipeline.synth.style import Color

# convex polygon, set of disjoint quads, billboard disc, polyline, closed polyline, convex hull of the
# projected vertices (a whole box in one call: the far level of detail of cars and buildings)
POLY, POLYS, DISC, LINE, RING, HULL = range(6)
IMAGE_ONLY = -1
# Painter layers: everything in a lower layer lies behind everything in a higher one, whatever the
# depths. Markings and shadows lie on the ground; buildings stand behind the property line, yard
# trees in front of them, fences on it; street furniture and road users share the top layer and
# are ordered by depth among themselves.
LAYER_MARKING, LAYER_SHADOW, LAYER_BUILDING, LAYER_YARD, LAYER_FENCE, LAYER_STREET = range(-2, 4)


@dataclass(frozen=True, slots=True)
class Op:
    kind: int
    start: int  # vertex range in the mesh
    stop: int
    color: Color
    label: int  # packed label value, or IMAGE_ONLY
    size: float = 0.0  # disc radius or line thickness, metres
    cull: bool = False  # polygon drawn only when its front (counter-clockwise side) faces the camera
    detail: bool = False  # drawn only when the mesh is large on screen (level of detail) ...
    far: bool = False  # ... or only when it is small: its stand-in


@dataclass(frozen=True)
class Mesh:
    """Immutable once built; scenery meshes live for many frames, agent meshes for one."""

    verts: np.ndarray  # (N, 3) float64 world coordinates
    ops: tuple[Op, ...]
    anchor: tuple[float, float, float]  # depth-sort and fog reference point
    layer: int  # painter layers: everything in a lower layer is behind everything in a higher one
    extent: float  # rough size in metres: meshes smaller than a pixel or two are not drawn
    reach: float = 0.0  # largest disc radius / line half-width, metres (for culling)
    track_id: int = 0  # >0 for traffic agents: their unoccluded silhouette is measured

    @cached_property
    def near_ops(self) -> tuple[Op, ...]:
        """The operations drawn when the mesh is large enough on screen for details."""
        return tuple(op for op in self.ops if not op.far)

    @cached_property
    def far_ops(self) -> tuple[Op, ...]:
        """The operations drawn when it is not."""
        return tuple(op for op in self.ops if not op.detail)


class MeshBuilder:
    """Accumulates vertices and operations; ``build`` freezes them into a :class:`Mesh`."""

    def __init__(self) -> None:
        self._verts: list[np.ndarray] = []
        self._ops: list[Op] = []
        self.normals: list[tuple[float, float, float] | None] = []  # per operation, for callers that cull themselves
        self._n = 0
        self._reach = 0.0

    def _add(self, pts: np.ndarray) -> tuple[int, int]:
        pts = np.asarray(pts, np.float64).reshape(-1, 3)
        self._verts.append(pts)
        start = self._n
        self._n += len(pts)
        return start, self._n

    def poly(self, pts, color: Color, label: int = IMAGE_ONLY, normal=None, detail: bool = False) -> None:
        """A convex polygon. With ``normal`` (its outward direction) it is back-face culled."""
        pts = np.asarray(pts, np.float64)
        if normal is not None and np.cross(pts[1] - pts[0], pts[2] - pts[0]) @ normal < 0:
            pts = pts[::-1]
        s, e = self._add(pts)
        self._ops.append(Op(POLY, s, e, color, label, 0.0, normal is not None, detail))
        self.normals.append(normal)

    def quads(self, pts, color: Color, label: int = IMAGE_ONLY, normal=None, detail: bool = False) -> None:
        """Many disjoint coplanar quads (K, 4, 3) of one colour in one call: windows, posts, planks."""
        pts = np.asarray(pts, np.float64)
        if len(pts) == 0:
            return
        if normal is not None and np.cross(pts[0, 1] - pts[0, 0], pts[0, 2] - pts[0, 0]) @ normal < 0:
            pts = pts[:, ::-1]
        s, e = self._add(pts)
        self._ops.append(Op(POLYS, s, e, color, label, 0.0, normal is not None, detail))
        self.normals.append(normal)

    def hull(self, pts, color: Color, label: int = IMAGE_ONLY) -> None:
        """The filled outline of a convex solid given by its corners: the far stand-in of a mesh
        whose detailed faces are marked ``detail``."""
        s, e = self._add(pts)
        self._ops.append(Op(HULL, s, e, color, label, 0.0, False, False, True))
        self.normals.append(None)

    def disc(self, centre, radius: float, color: Color, label: int = IMAGE_ONLY, detail: bool = False) -> None:
        """A disc facing the camera (tree crowns, heads)."""
        s, e = self._add(centre)
        self._reach = max(self._reach, radius)
        self._ops.append(Op(DISC, s, e, color, label, radius, False, detail))
        self.normals.append(None)

    def line(self, pts, thickness: float, color: Color, label: int = IMAGE_ONLY, closed: bool = False,
             detail: bool = False) -> None:
        """A polyline of constant world thickness (limbs, bicycle frames and wheels)."""
        s, e = self._add(pts)
        self._reach = max(self._reach, thickness / 2)
        self._ops.append(Op(RING if closed else LINE, s, e, color, label, thickness, False, detail))
        self.normals.append(None)

    def build(self, anchor, layer: int, track_id: int = 0) -> Mesh:
        verts = np.concatenate(self._verts) if self._verts else np.zeros((0, 3))
        extent = float(np.ptp(verts, axis=0).max()) + 2 * self._reach if len(verts) else 0.0
        return Mesh(verts, tuple(self._ops), tuple(float(v) for v in anchor), layer, extent, self._reach, track_id)


def box_faces(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> list[tuple[np.ndarray, tuple]]:
    """The six faces of an axis-aligned box as (4x3 vertices, outward normal)."""
    return [
        (np.array([[x0, y0, z0], [x0, y1, z0], [x0, y1, z1], [x0, y0, z1]]), (-1.0, 0.0, 0.0)),
        (np.array([[x1, y0, z0], [x1, y0, z1], [x1, y1, z1], [x1, y1, z0]]), (1.0, 0.0, 0.0)),
        (np.array([[x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0]]), (0.0, 0.0, -1.0)),
        (np.array([[x0, y0, z1], [x0, y1, z1], [x1, y1, z1], [x1, y0, z1]]), (0.0, 0.0, 1.0)),
        (np.array([[x0, y1, z0], [x1, y1, z0], [x1, y1, z1], [x0, y1, z1]]), (0.0, 1.0, 0.0)),
        (np.array([[x0, y0, z0], [x0, y0, z1], [x1, y0, z1], [x1, y0, z0]]), (0.0, -1.0, 0.0)),
    ]
