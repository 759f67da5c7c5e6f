"""All seeding in one place: every random stream is derived from (seed, stage, stream...).

`derive(seed, "pool", "bon", 3)` hashes its arguments into a 63-bit integer, so streams of
different stages, splits or prompts never share state, and no module does seed arithmetic.
"""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np

from rewardlab.common.lazy import torch


def derive(seed: int, stage: str, *stream: object) -> int:
    """A 63-bit integer determined by (seed, stage, *stream): the first 8 bytes of
    SHA-256 of their JSON, top bit cleared (torch takes signed 64-bit seeds)."""
    blob = json.dumps([int(seed), stage, *stream], default=str).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big") >> 1


def rng(seed: int, stage: str, *stream: object) -> np.random.Generator:
    """A NumPy generator for the stream (seed, stage, *stream)."""
    return np.random.default_rng(derive(seed, stage, *stream))


def torch_generator(seed: int, stage: str, *stream: object) -> torch.Generator:
    """A CPU torch generator for the stream (seed, stage, *stream)."""
    return torch.Generator().manual_seed(derive(seed, stage, *stream))


def seed_everything(seed: int, stage: str, *stream: object) -> np.random.Generator:
    """Seed `random`, NumPy's legacy state and torch from the stream (seed, stage, *stream)
    (model initialisation and dropout draw from these); return a generator of the same stream."""
    s = derive(seed, stage, *stream)
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)
    return np.random.default_rng(s)


def prompt_uniforms(
    seed: int, stage: str, *stream: object, prompts: int, samples: int, width: int
) -> torch.Tensor:
    """Uniforms of shape (prompts * samples, width) for a sampler: rows i*samples ..
    (i+1)*samples - 1 are drawn from the stream (seed, stage, *stream, i), so each prompt's
    samples depend on its index alone, not on how many prompts are drawn with it."""
    if prompts == 0:
        return torch.zeros((0, width))
    return torch.cat([torch.rand((samples, width), generator=torch_generator(seed, stage, *stream, i))
                      for i in range(prompts)])  # fmt: skip
