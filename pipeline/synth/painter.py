"""Painter's algorithm: draw meshes far to near into an image and a packed label map.

All vertices of all meshes are projected in one vectorised step; the per-operation loop then only
slices precomputed integer coordinates and calls OpenCV. Coordinates carry 4 fractional bits
(OpenCV's ``shift``) so slowly moving objects glide instead of jumping whole pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.synth.camera import NEAR, Camera, clip_near
from pipeline.synth.mesh import DISC, HULL, IMAGE_ONLY, POLY, POLYS, RING, Mesh
from pipeline.synth.style import Color

SHIFT = 4
ONE = 1 << SHIFT
MIN_PX = 1.5  # meshes smaller than this on screen are not drawn
DETAIL_PX_PER_M = 7.0  # below this scale meshes drop their details and use their far stand-ins


@dataclass(frozen=True)
class Fog:
    color: Color
    distance: float  # metres at which 63 % of a colour is haze


@dataclass(frozen=True)
class Silhouette:
    """What an agent would cover with nothing in front of it (inside the frame)."""

    track_id: int
    pixels: int
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) that contains every drawn pixel


def paint(img: np.ndarray, lab: np.ndarray, meshes: list[Mesh], cam: Camera, fog: Fog,
          scratch: np.ndarray | None = None) -> list[Silhouette]:
    """Draw ``meshes`` in layer then far-to-near order. ``scratch`` (HxW uint8 zeros, returned
    zeroed) enables measuring the unoccluded silhouette of meshes that carry a track id."""
    if not meshes:
        return []
    h, w = lab.shape
    f = cam.f
    n = len(meshes)
    depth = np.maximum(cam.to_camera(np.array([m.anchor for m in meshes]))[:, 2], NEAR)
    sizes = np.array([len(m.verts) for m in meshes])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pc = cam.to_camera(np.concatenate([m.verts for m in meshes]))
    z = pc[:, 2]
    uv = cam.project_camera(pc)
    p16 = np.rint(uv * ONE).astype(np.int32)
    # per-mesh depth range and screen box, then every whole-mesh decision at once
    nonempty = sizes > 0
    zmin, zmax, box = np.full(n, -1.0), np.full(n, -1.0), np.zeros((n, 4))
    zmin[nonempty] = np.minimum.reduceat(z, starts[nonempty])
    zmax[nonempty] = np.maximum.reduceat(z, starts[nonempty])
    for k in range(2):
        box[nonempty, k] = np.minimum.reduceat(uv[:, k], starts[nonempty])
        box[nonempty, k + 2] = np.maximum.reduceat(uv[:, k], starts[nonempty])
    px_per_m = f / depth
    reach = np.array([m.reach for m in meshes])
    margin = 2.0 + f * reach / np.maximum(zmin, NEAR)
    straddles = zmin < NEAR
    extent = np.array([m.extent for m in meshes])
    drawn = (zmax >= NEAR) & (px_per_m * extent >= MIN_PX) & ~_outside_frustum(pc, starts, nonempty, reach, cam, w, h)
    layers = np.array([m.layer for m in meshes])
    order = np.lexsort((-depth, layers))
    order = order[drawn[order]].tolist()
    fog_k = (1.0 - np.exp(-depth / fog.distance)).tolist()
    detailed = (px_per_m >= DETAIL_PX_PER_M).tolist()
    straddles_l, starts_l, margin_l, box_l = straddles.tolist(), starts.tolist(), margin.tolist(), box.tolist()
    fr, fg, fb = fog.color
    fill_convex, fill_poly, circle, polylines, area = (cv2.fillConvexPoly, cv2.fillPoly, cv2.circle, cv2.polylines,
                                                       cv2.contourArea)
    line8 = cv2.LINE_8
    out: list[Silhouette] = []
    for i in order:
        mesh = meshes[i]
        k = fog_k[i]
        base = starts_l[i]
        straddle = straddles_l[i]
        sil = scratch if (mesh.track_id and scratch is not None) else None
        for op in (mesh.near_ops if detailed[i] else mesh.far_ops):
            s, e = base + op.start, base + op.stop
            color = op.color
            if k > 0.01:
                color = (color[0] + (fr - color[0]) * k, color[1] + (fg - color[1]) * k, color[2] + (fb - color[2]) * k)
            kind = op.kind
            # Image, then label map, then the object's silhouette: one geometry, drawn into each canvas.
            targets = [(img, color)]
            if op.label != IMAGE_ONLY:
                targets.append((lab, (op.label,)))
                if sil is not None:
                    targets.append((sil, (1,)))
            if kind == POLY:
                if straddle and z[s:e].min() < NEAR:
                    c = clip_near(pc[s:e])
                    if len(c) < 3:
                        continue
                    pts = np.rint(cam.project_camera(c) * ONE).astype(np.int32)
                else:
                    pts = p16[s:e]
                if op.cull and area(pts, True) <= 0:
                    continue
                for canvas, value in targets:
                    fill_convex(canvas, pts, value, line8, SHIFT)
            elif kind == POLYS:
                quads = p16[s:e].reshape(-1, 4, 2)
                if straddle:
                    quads = quads[z[s:e].reshape(-1, 4).min(axis=1) >= NEAR]
                    if not len(quads):
                        continue
                if op.cull and area(quads[0], True) <= 0:
                    continue
                pts = list(quads)
                for canvas, value in targets:
                    fill_poly(canvas, pts, value, line8, SHIFT)
            elif straddle and z[s:e].min() < NEAR:
                continue
            elif kind == HULL:
                pts = cv2.convexHull(p16[s:e])
                for canvas, value in targets:
                    fill_convex(canvas, pts, value, line8, SHIFT)
            elif kind == DISC:
                centre = (int(p16[s, 0]), int(p16[s, 1]))
                r = max(int(f * op.size / z[s] * ONE), ONE // 2)
                for canvas, value in targets:
                    circle(canvas, centre, r, value, -1, line8, SHIFT)
            else:  # LINE or RING
                pts = [p16[s:e]]
                t = max(1, int(f * op.size / z[s] + 0.5))
                closed = kind == RING
                for canvas, value in targets:
                    polylines(canvas, pts, closed, value, t, line8, SHIFT)
        if sil is not None:
            m = int(np.ceil(margin_l[i]))
            x0, y0, x1, y1 = box_l[i]
            if straddle:  # clipped polygons: find what was drawn
                bx, by, bw, bh = cv2.boundingRect(sil)
                bx = (bx, by, bx + bw, by + bh)
            else:
                bx = (max(int(x0) - m, 0), max(int(y0) - m, 0), min(int(x1) + m + 2, w), min(int(y1) + m + 2, h))
            if bx[2] > bx[0] and bx[3] > bx[1]:
                region = sil[bx[1]:bx[3], bx[0]:bx[2]]
                out.append(Silhouette(mesh.track_id, int(cv2.countNonZero(region)), bx))
                region[:] = 0
    return out


def _outside_frustum(pc: np.ndarray, starts: np.ndarray, nonempty: np.ndarray, reach: np.ndarray, cam: Camera,
                     w: int, h: int) -> np.ndarray:
    """Meshes whose every vertex lies beyond one side plane of the view frustum (grown by 2 pixels
    and by the mesh's disc/line reach). Exact for the convex hull, and unlike a screen-box test it
    also rejects meshes that straddle the camera plane, such as cars parked beside a dashcam."""
    out = ~nonempty
    x, y, z = pc[:, 0] * cam.f, pc[:, 1] * cam.f, pc[:, 2]
    for value, k in ((x - (w - cam.cx + 2) * z, w - cam.cx + 2), (-x - (cam.cx + 2) * z, cam.cx + 2),
                     (y - (h - cam.cy + 2) * z, h - cam.cy + 2), (-y - (cam.cy + 2) * z, cam.cy + 2)):
        low = np.full(len(starts), -np.inf)
        low[nonempty] = np.minimum.reduceat(value, starts[nonempty])
        out |= low > reach * np.hypot(cam.f, k)
    return out
