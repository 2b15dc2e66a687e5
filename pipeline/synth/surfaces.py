"""Texture on the street's walls and foliage, so that buildings and trees are not flat colours.

Drawing texture per polygon would multiply the drawing calls. Instead every pixel gets the point
where its ray meets the vertical plane of the building fronts on its side of the street (like the
ground, this is fixed for a camera that only translates along the road), and a world-space tile is
looked up there, scrolled by the camera's travel. Building and tree pixels then get the facade or
the foliage channel as a gain, applied together with the vignette (see postfx). Set-back buildings
and kerb-side trees are not on that plane, so their texture slides a little against them; at these
amplitudes that reads as surface detail.
The lookup runs at half resolution: the texture is low-frequency, sensor noise adds the grain.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.synth import classes as C
from pipeline.synth.camera import Camera
from pipeline.synth.layout import Side
from pipeline.synth.textures import smooth_noise

PX_PER_M = 12.0
TILE = 256  # pixels, both directions


class SurfaceTexture:
    def __init__(self, seed: int, cam: Camera, canvas: tuple[int, int], sides: tuple[Side, Side]):
        rng = np.random.default_rng([seed, 0x5F])
        w, h = canvas
        rays = cam.pixel_rays(w, h)
        dx = rays[..., 0]
        plane = np.where(dx > 0, sides[1].property_line, -sides[0].property_line)
        t = np.clip((plane - cam.pos[0]) / np.where(np.abs(dx) < 1e-6, 1e-6, dx), 0.0, 1e4)
        self.map_u = (t * rays[..., 2] * PX_PER_M % TILE).astype(np.float32)  # along the road
        self.map_v = ((cam.pos[1] + t * rays[..., 1]) * PX_PER_M % TILE).astype(np.float32)  # height
        fine = smooth_noise(rng, (TILE, TILE), 3.0, 2)
        coarse = smooth_noise(rng, (TILE, TILE), 48.0, 3)
        streaks = cv2.resize(smooth_noise(rng, (TILE // 8, TILE), 4.0, 2), (TILE, TILE))
        strength = rng.uniform(0.6, 1.4)
        facade = 128 + strength * (10 * coarse + 5 * fine + 8 * streaks)
        leaves = 128 + 34 * smooth_noise(rng, (TILE, TILE), 2.5, 2) + 16 * coarse
        # rows of the tile are heights, columns distances along the road
        self.tile = np.clip(np.dstack([facade, leaves]), 0, 255).astype(np.uint8)

    def gain(self, semantic: np.ndarray, y0: int, x0: int, travel: float) -> np.ndarray:
        """Per-pixel gain (HxW uint8, 128 = 1.0) for the canvas window at (x0, y0): the facade
        texture on building pixels, the foliage texture on tree pixels, neutral elsewhere."""
        h, w = semantic.shape
        mu = np.ascontiguousarray(self.map_u[y0:y0 + h:2, x0:x0 + w:2])
        mv = np.ascontiguousarray(self.map_v[y0:y0 + h:2, x0:x0 + w:2])
        tex = cv2.remap(self.tile, mu + np.float32(travel * PX_PER_M % TILE), mv, cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_WRAP)
        facade, leaves = cv2.split(cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR))
        out = np.full((h, w), 128, np.uint8)
        cv2.copyTo(facade, (semantic == C.BUILDING).view(np.uint8), out)
        cv2.copyTo(leaves, (semantic == C.TREE).view(np.uint8), out)
        return out
