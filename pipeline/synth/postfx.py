"""Camera response applied to the rendered image: exposure and tone, vignette, blur, sensor noise.

Everything costly is precomputed per world: a per-channel lookup table for tone, a vignette map
(multiplied with the per-frame surface-texture gain, so both cost one pass) and a noise tile
larger than the frame, of which each frame takes a window at an offset drawn from (seed, frame
index). The labels are untouched: these effects change appearance, not content.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.synth.style import LookStyle

NOISE_PAD = 64


class CameraResponse:
    def __init__(self, seed: int, look: LookStyle, size: tuple[int, int]):
        self.seed = seed
        w, h = size
        x = np.arange(256, dtype=np.float64) / 255.0
        lut = np.empty((1, 256, 3), np.uint8)
        for c in range(3):
            v = np.clip(x * look.gain[c], 0, 1) ** look.gamma
            v = np.clip((v - 0.5) * look.contrast + 0.5, 0, 1)
            lut[0, :, c] = np.rint(v * 255).astype(np.uint8)
        self.lut = lut
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        self.vignette = np.clip(1.0 - look.vignette * r2 / 2, 0, 1).astype(np.float32) / 128.0
        self.blur = look.blur
        k = 3 if look.blur <= 0.8 else 5  # covers +-2.5 sigma; OpenCV's default would be 7x7 at sigma 1.1
        self._kernel = (k, k)
        rng = np.random.default_rng([seed, 0x0150])
        grey = rng.normal(0, look.noise, (h + NOISE_PAD, w + NOISE_PAD, 1))
        colour = rng.normal(0, look.noise * 0.35, (h + NOISE_PAD, w + NOISE_PAD, 3))
        self.noise = np.rint(grey + colour).astype(np.int16)
        self.size = size

    def apply(self, image: np.ndarray, index: int, gain: np.ndarray) -> np.ndarray:
        """``gain``: HxW uint8 per-pixel surface gain (128 = 1.0), applied with the vignette in one pass."""
        g = cv2.multiply(gain, self.vignette, dtype=cv2.CV_32F)
        out = cv2.LUT(cv2.multiply(image, cv2.merge([g, g, g]), dtype=cv2.CV_8U), self.lut)
        if self.blur > 0:
            out = cv2.GaussianBlur(out, self._kernel, self.blur)
        ox, oy = np.random.default_rng([self.seed, 0x0151, index]).integers(0, NOISE_PAD, 2)
        w, h = self.size
        return cv2.add(out, self.noise[oy:oy + h, ox:ox + w], dtype=cv2.CV_8U)
