"""Ensembles of reward models (kind `ensemble`), reduced as in Coste et al. 2023
(arXiv 2310.02743): k members trained like a `learned` model with seed streams 0..k-1, one
reward ``<name>/<reducer>`` per reducer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from rewardlab.rewards import learned
from rewardlab.rewards.base import Reward

if TYPE_CHECKING:  # a type only: the context is built by the study
    from rewardlab.context import StudyContext

REDUCERS = ("mean", "min", "uwo")
Reducer = Literal["mean", "min", "uwo"]

STAGES = ("reward_model",)  # the cache stages it builds (`rewardlab run --rebuild` names them)


class Config(learned.Config):
    """k reward models of one spec, trained with different seeds, and the reducers to apply."""

    kind: Literal["ensemble"] = Field("ensemble", description="reward source: an ensemble")
    members: int = Field(3, ge=2, description="ensemble size; member i uses seed stream i")
    reducers: list[Reducer] = Field(
        default_factory=lambda: list(REDUCERS),
        min_length=1,
        description="one reward <name>/<reducer> per item: mean, min (worst case), uwo",
    )
    uwo_lambda: float = Field(1.0, ge=0, description="uncertainty-weighted: mean - lambda * var")

    def names(self) -> list[str]:
        """One reward per reducer: ``<name>/<reducer>``, the only place these names are made."""
        return [f"{self.name}/{red}" for red in self.reducers]


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


def build(cfg: Config, ctx: StudyContext) -> list[Reward]:
    """Train the members; one reward per reducer over the same member models."""
    trained = learned.train_members(cfg, cfg.members, ctx)
    members = [learned.LearnedReward(res.path, device=ctx.device) for res, _ in trained]
    params = sum(m["params"] for _, m in trained)
    out = []
    for red, name in zip(cfg.reducers, cfg.names(), strict=True):
        lam = cfg.uwo_lambda if red == "uwo" else None
        key = {"stages": [res.hash for res, _ in trained], "reducer": red, "lambda": lam}
        meta = {**learned.reward_meta(cfg, trained), "base": cfg.name, "reducer": red, "lam": lam}
        fn = EnsembleReward(members, red, cfg.uwo_lambda)
        out.append(Reward(name, "ensemble", fn, key, params=params, meta=meta))
    return out
