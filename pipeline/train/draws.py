"""How both trainers draw their data's randomness: an epoch's order from (config seed, epoch), everything
one batch draws (which frames, synthetic scenes, pastes, augmentation) from (seed, epoch, batch number),
never from what was drawn before. So any process can prepare any batch: worker processes give the batches
the training process would, and a resumed run continues the stream it left."""

from __future__ import annotations

import numpy as np


def epoch_order(seed: int, epoch: int, n: int) -> list[int]:
    """The epoch's shuffled order of ``n`` training items."""
    return np.random.default_rng((seed, epoch)).permutation(n).tolist()


def reseed(rng: np.random.Generator, seed: int, epoch: int, number: int) -> None:
    """Put ``rng`` (the generator the data code shares) in the state batch ``number`` of ``epoch`` starts
    from."""
    rng.bit_generator.state = np.random.default_rng((seed, epoch, number)).bit_generator.state
