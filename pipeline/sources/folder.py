"""Image sequences: a folder of images, or a glob such as ``frames/*.png``, read in name order.

Exported frame dumps and datasets (CamVid, KITTI) come as numbered images. Names are ordered
naturally (``f2.png`` before ``f10.png``) so unpadded numbering plays in the right order too. Images
carry no timestamps, so pts is ``index / fps`` with ``options.fps`` (default 30). Each image is
decoded when its turn comes, and each keeps its own size.
"""

from __future__ import annotations

import glob
import math
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import EdgeSegError
from pipeline.sources.base import SourceOptions, SourceStats
from pipeline.sources.passes import frames_in_passes
from pipeline.sources.uri import local_path
from pipeline.types import Frame

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DEFAULT_FPS = 30.0


class FolderSource:
    live = False

    def __init__(self, uri: str, source_id: str, options: SourceOptions = SourceOptions()):
        self.uri, self.source_id, self.options = uri, source_id, options
        self.stats = SourceStats()
        self.fps = DEFAULT_FPS if options.fps is None else float(options.fps)
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise EdgeSegError(f"{uri}: fps must be a positive number, got {options.fps!r}")
        path = local_path(uri)
        candidates = path.iterdir() if path.is_dir() else map(Path, glob.glob(str(path)))
        self.files = sorted((p for p in candidates if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                            key=_natural_key)
        if not self.files:
            raise EdgeSegError(f"{uri}: no images ({' '.join(IMAGE_SUFFIXES)}) found")
        self.length = None if options.loop else len(self.files)

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        return frames_in_passes(self._one_pass, loop=self.options.loop, stop=stop, source_id=self.source_id,
                                stats=self.stats, frame_step=1 / self.fps)

    def close(self) -> None:
        """Nothing stays open between images."""

    def _one_pass(self) -> Iterator[tuple[np.ndarray, float]]:
        for i, path in enumerate(self.files):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # grey, 16-bit and alpha images become 8-bit BGR
            if image is None:
                raise EdgeSegError(f"{self.uri}: cannot decode image {path} (frame {i})")
            yield image, i / self.fps


def _natural_key(path: Path) -> tuple[list[str | int], str]:
    """``f2`` before ``f10``: digit runs compare as numbers, the rest as text (``f01`` and ``f1`` then
    by text). The whole path counts, for globs that span folders."""
    text = str(path)
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)], text
