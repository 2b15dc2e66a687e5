"""One seed for every random generator a training run draws from, so a run can be repeated."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_all(seed: int) -> np.random.Generator:
    """Seed Python's, numpy's legacy and torch's generators; return a numpy Generator for the data code."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)
