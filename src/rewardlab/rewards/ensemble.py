"""Ensembles of reward models, reduced as in Coste et al. 2023 (arXiv 2310.02743)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

REDUCERS = ("mean", "min", "uwo")


def reduce_scores(scores: np.ndarray, reducer: str, lam: float = 1.0) -> np.ndarray:
    """Combine member scores of shape (k, B) into one score per sample, shape (B,).

    - ``mean``: R = (1/k) sum_i R_i
    - ``min`` (worst-case optimisation, WCO): R = min_i R_i
    - ``uwo`` (uncertainty-weighted optimisation): R = mean_i R_i - lam * var_i R_i, with the
      population variance var_i R_i = (1/k) sum_i (R_i - mean)^2 (Coste et al. 2023, eq. 3).
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores must have shape (members, samples), got {scores.shape}")
    if reducer == "mean":
        return scores.mean(0)
    if reducer == "min":
        return scores.min(0)
    if reducer == "uwo":
        return scores.mean(0) - lam * scores.var(0)
    raise ValueError(f"unknown reducer {reducer!r}; expected one of {REDUCERS}")


class EnsembleReward:
    """A reward function over k member reward functions, combined by `reduce_scores`."""

    def __init__(
        self, members: Sequence[Callable[..., list[float]]], reducer: str = "mean", lam: float = 1.0
    ):
        if reducer not in REDUCERS:
            raise ValueError(f"unknown reducer {reducer!r}; expected one of {REDUCERS}")
        self.members, self.reducer, self.lam = list(members), reducer, lam
        self.__name__ = f"ensemble{len(self.members)}:{reducer}"

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kw) -> list[float]:
        scores = np.array([m(prompts, completions, **kw) for m in self.members])  # (k, B)
        return reduce_scores(scores, self.reducer, self.lam).tolist()
