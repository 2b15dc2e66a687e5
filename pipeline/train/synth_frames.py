"""Random frames of the synthetic road world for training: both trainers (semantic and instance) draw
frames at random (world seed, frame index) from a range of world seeds."""

from __future__ import annotations

import numpy as np

from pipeline.synth import SynthFrame, SynthWorld


class SynthFrames:
    """Frames at random (seed, index) from the synthetic worlds of a seed range, drawn with ``rng`` (the
    caller's generator, which it may re-seed per batch). Each world is built on first use (~0.15 s,
    ~20 MB) and kept; a frame renders in a few tens of milliseconds."""

    def __init__(self, seeds: range, max_index: int, size: tuple[int, int], rng: np.random.Generator):
        self.seeds, self.max_index, self.size = seeds, max_index, size
        self.rng = rng
        self._worlds: dict[int, SynthWorld] = {}

    def sample(self) -> SynthFrame:
        seed = int(self.seeds[self.rng.integers(len(self.seeds))])
        return self._world(seed).render(int(self.rng.integers(self.max_index)))

    def build_all(self) -> None:
        """Build every world now: worker processes forked afterwards share them instead of each building its
        own every epoch. Draws nothing from the generator."""
        for seed in self.seeds:
            self._world(seed)

    @property
    def built(self) -> list[int]:
        """Seeds whose worlds are built."""
        return sorted(self._worlds)

    def _world(self, seed: int) -> SynthWorld:
        world = self._worlds.get(seed)
        if world is None:
            world = self._worlds[seed] = SynthWorld(seed=seed, size=self.size)
        return world
