"""Pinhole camera of the synthetic world.

World axes: X to the right of the road direction, Y up, Z along the road; the ground is Y = 0.
Camera axes: x right, y down, z forward (OpenCV's). Only yaw and pitch are modelled: with no roll
the horizon stays a horizontal image row, which lets the sky and ground be precomputed per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEAR = 0.3  # metres; geometry closer than this to the image plane is clipped


@dataclass(frozen=True)
class Camera:
    f: float  # focal length in pixels (square pixels)
    cx: float
    cy: float
    pos: np.ndarray  # (3,) world position
    rot: np.ndarray  # (3, 3) rows = camera x, y, z axes in world coordinates

    @classmethod
    def looking_along_road(cls, size: tuple[int, int], hfov_deg: float, pos: tuple[float, float, float],
                           yaw_deg: float, pitch_deg: float) -> Camera:
        w, h = size
        f = (w / 2) / np.tan(np.radians(hfov_deg) / 2)
        yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
        fwd = np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
        right = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])
        down = np.cross(right, fwd)
        return cls(f=float(f), cx=w / 2, cy=h / 2, pos=np.asarray(pos, float), rot=np.stack([right, down, fwd]))

    def moved(self, dz: float = 0.0, dcx: float = 0.0, dcy: float = 0.0) -> Camera:
        """The same camera driven ``dz`` metres along the road, principal point shifted (shake)."""
        return Camera(self.f, self.cx + dcx, self.cy + dcy, self.pos + (0.0, 0.0, dz), self.rot)

    def to_camera(self, pts: np.ndarray) -> np.ndarray:
        return (pts - self.pos) @ self.rot.T

    def project_camera(self, pc: np.ndarray) -> np.ndarray:
        """Camera-frame points (N, 3) with z >= NEAR to pixel coordinates (N, 2)."""
        z = np.maximum(pc[:, 2:3], NEAR)
        return pc[:, :2] * (self.f / z) + (self.cx, self.cy)

    @property
    def horizon_row(self) -> float:
        """Image row of the vanishing line of the ground plane."""
        d = np.array([self.rot[2, 0], 0.0, self.rot[2, 2]])  # horizontal direction the camera faces
        return float(self.cy + self.f * (self.rot[1] @ d) / (self.rot[2] @ d))

    def pixel_rays(self, width: int, height: int, x0: float = 0.0, y0: float = 0.0) -> np.ndarray:
        """World-frame ray directions (H, W, 3) through pixel centres of a grid offset by (x0, y0)."""
        u = (np.arange(width, dtype=np.float64) + x0 - self.cx) / self.f
        v = (np.arange(height, dtype=np.float64) + y0 - self.cy) / self.f
        d = np.empty((height, width, 3))
        d[..., 0], d[..., 1], d[..., 2] = u[None, :], v[:, None], 1.0
        return d @ self.rot


def clip_near(pc: np.ndarray) -> np.ndarray:
    """Clip a convex camera-frame polygon (N, 3) to z >= NEAR (Sutherland-Hodgman, one plane).

    Needed only for the rare polygon that straddles the camera (a car passing beside a dashcam);
    projecting such a polygon without clipping folds it across the image."""
    out = []
    n = len(pc)
    for i in range(n):
        a, b = pc[i], pc[(i + 1) % n]
        ina, inb = a[2] >= NEAR, b[2] >= NEAR
        if ina:
            out.append(a)
        if ina != inb:
            t = (NEAR - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.asarray(out).reshape(-1, 3)
