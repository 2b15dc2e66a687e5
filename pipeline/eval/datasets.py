"""Labelled datasets for evaluation, opened from a ``KIND:DIR`` (or ``synth:SEEDS``) spec.

CamVid in the SegNet tutorial's layout: ``DIR/<split>/*.png|*.jpg`` with the label map of each image
at ``DIR/<split>annot/<stem>.png`` (uint8 class indices of :data:`pipeline.labels.CAMVID`, 11 = void).
Every image is paired with its label when the dataset is opened, so a missing label stops the run
before any model time is spent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import EdgeSegError
from pipeline.labels import CAMVID, LabelSet

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class LabelledImage:
    index: int
    name: str  # file stem
    image: np.ndarray  # HxWx3 uint8 BGR
    labels: np.ndarray  # HxW uint8 ground truth, label_set indices, void = label_set.void_index


class CamVidDataset:
    """A split of CamVid; iterating reads and checks one image/label pair at a time."""

    label_set: LabelSet = CAMVID
    kind = "camvid"

    def __init__(self, root: str | Path, split: str):
        self.root = Path(root)
        self.split = split
        image_dir = self.root / split
        label_dir = self.root / f"{split}annot"
        if not image_dir.is_dir():
            raise EdgeSegError(f"camvid:{self.root}: split '{split}' not found: {image_dir} is not a directory")
        self.images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.images:
            raise EdgeSegError(f"camvid:{self.root}: no .png or .jpg images in {image_dir}")
        self.labels = [label_dir / f"{p.stem}.png" for p in self.images]
        for image, label in zip(self.images, self.labels):
            if not label.is_file():
                raise EdgeSegError(f"{image}: no label map (expected {label})")

    @property
    def name(self) -> str:
        """``camvid:val`` style, as model cards key their metrics."""
        return f"{self.kind}:{self.split}"

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[LabelledImage]:
        for i, (image_path, label_path) in enumerate(zip(self.images, self.labels)):
            yield self._read(i, image_path, label_path)

    def _read(self, index: int, image_path: Path, label_path: Path) -> LabelledImage:
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise EdgeSegError(f"{image_path}: cannot be decoded as an image")
        labels = cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)
        if labels is None or labels.ndim != 2 or labels.dtype != np.uint8:
            raise EdgeSegError(f"{label_path}: not a single-channel 8-bit label map")
        if labels.shape != image.shape[:2]:
            raise EdgeSegError(f"{label_path}: {labels.shape[1]}x{labels.shape[0]} label map for a "
                               f"{image.shape[1]}x{image.shape[0]} image {image_path.name}")
        strange = (labels >= self.label_set.num_classes) & (labels != self.label_set.void_index)
        if strange.any():
            raise EdgeSegError(f"{label_path}: label value {int(labels[strange][0])} is neither a "
                               f"{self.label_set.name} class nor void ({self.label_set.void_index})")
        return LabelledImage(index, image_path.stem, image, labels)


class SynthDataset:
    """Frames of the synthetic road world with their exact label maps: ``synth:9000-9004`` is seeds 9000 to
    9004, :attr:`frames_per_seed` frames each, spread over the first 20 s of each clip at the demo's
    640x360. Training uses seeds 1000-1031, so the default range here is held out. The split is ignored
    (the seed range is the split)."""

    label_set: LabelSet = CAMVID
    kind = "synth"
    frames_per_seed = 20
    frame_step = 30  # one frame a second at 30 fps
    size = (640, 360)

    def __init__(self, seeds: str, split: str):
        first, _, last = seeds.partition("-")
        try:
            self.seeds = range(int(first), int(last or first) + 1)
        except ValueError:
            raise EdgeSegError(f"synth:{seeds}: expected a seed or a seed range like 9000-9004") from None
        if not self.seeds:
            raise EdgeSegError(f"synth:{seeds}: empty seed range")
        self.root = seeds
        self.split = split

    @property
    def name(self) -> str:
        return f"synth:{self.root}"

    def __len__(self) -> int:
        return len(self.seeds) * self.frames_per_seed

    def __iter__(self) -> Iterator[LabelledImage]:
        from pipeline.synth import SynthWorld  # noqa: PLC0415  (only synth evaluations need it)

        for n, seed in enumerate(self.seeds):
            world = SynthWorld(seed=seed, size=self.size)
            for k in range(self.frames_per_seed):
                f = world.render(k * self.frame_step)
                yield LabelledImage(n * self.frames_per_seed + k, f"{seed}_{f.frame.index:06d}", f.frame.image, f.semantic)


Dataset = CamVidDataset | SynthDataset
DATASET_KINDS: dict[str, type[Dataset]] = {"camvid": CamVidDataset, "synth": SynthDataset}


def open_dataset(spec: str, split: str) -> Dataset:
    """``camvid:DIR`` or ``synth:SEEDS`` -> the dataset reader for that split."""
    kind, sep, root = spec.partition(":")
    if not sep or not root:
        raise EdgeSegError(f"dataset '{spec}': expected KIND:DIR, e.g. camvid:../shared/data/camvid")
    if kind not in DATASET_KINDS:
        raise EdgeSegError(f"dataset '{spec}': unknown kind '{kind}' (known: {', '.join(DATASET_KINDS)})")
    return DATASET_KINDS[kind](root, split)
