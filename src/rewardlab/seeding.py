"""All seeding in one place: Python, NumPy and torch from one integer."""

import random

import numpy as np
import torch


def seed_everything(seed: int) -> np.random.Generator:
    """Seed `random`, NumPy's legacy state and torch; return a fresh NumPy Generator for `seed`."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)
