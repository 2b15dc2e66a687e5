"""Per-seed noise tiles, computed once per world and then only sampled (remap, slicing) per frame."""

from __future__ import annotations

import cv2
import numpy as np


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float, octaves: int = 3,
                 wrap: bool = True) -> np.ndarray:
    """Fractal value noise in [-1, 1] (float32): random grids upsampled with cubic interpolation.

    ``cell`` is the size in pixels of the coarsest octave; each octave halves it. With ``wrap`` the
    grid is tiled before resizing so the result repeats seamlessly (needed by BORDER_WRAP lookups)."""
    h, w = shape
    out = np.zeros(shape, np.float32)
    amp, total = 1.0, 0.0
    for _ in range(octaves):
        gh, gw = max(2, int(round(h / cell))), max(2, int(round(w / cell)))
        grid = rng.standard_normal((gh, gw)).astype(np.float32)
        if wrap:
            big = np.tile(grid, (3, 3))
            up = cv2.resize(big, (w * 3, h * 3), interpolation=cv2.INTER_CUBIC)[h:2 * h, w:2 * w]
        else:
            up = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        out += amp * up
        total += amp
        amp *= 0.5
        cell = max(cell / 2, 1.0)
    out /= total
    return np.clip(out / (3 * out.std() + 1e-6), -1, 1)
