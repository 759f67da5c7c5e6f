"""The reward-source contract: a config with `name` and `kind`, and a `build` that returns
`Reward`s (a callable with TRL's signature plus its metadata) from the study's context
(`context.StudyContext`).

A reward kind is one module under `rewards/` with ``Config`` (a `RewardBase` whose ``kind`` is a
`Literal`) and ``build(cfg, ctx) -> list[Reward]``, plus its line in `rewards.KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, field_validator

from rewardlab.cache import StageResult
from rewardlab.errors import RewardLabError
from rewardlab.specs import Strict

RULE = "rule"  # the name of the task's own rule, always available as a reward

RewardFn = Callable[..., list[float]]  # f(prompts, completions, **kw) -> one score per sample


class RewardBase(Strict):
    """Fields every reward source has."""

    name: str = Field(..., description="the name optimizers and tables use for this reward")

    def names(self) -> list[str]:
        """The names of the rewards this source builds (one, unless it says otherwise)."""
        return [self.name]

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not v or "/" in v or v != v.strip():
            raise ValueError(f"reward name {v!r} must be non-empty, without '/' or edge spaces")
        return v


@dataclass
class Reward:
    """A built reward: the callable, what identifies it for caching, and its metadata.

    Attributes:
        name: unique within a study (an ensemble's are ``<name>/<reducer>``).
        kind: the source kind (`rule`, `learned`, `ensemble`, `function`, ...).
        fn: ``fn(prompts, completions, **kw) -> list[float]``, TRL's reward signature.
        key: JSON-able identity of the reward (stage hashes, file digests, parameters): a stage
            that scores or optimises this reward is keyed on it.
        params: trainable parameters (0 for a rule or a function).
        meta: more columns for ``rewards.csv`` (what it was trained on, its reducer, ...).
        isolate: run it in a child process that can be stopped (code the lab did not write).
        refresh: for a learned reward that can be retrained during RL, ``refresh(samples) ->
            (fn, stage, gold_calls)``: the reward retrained on its own data plus `samples`
            (columns prompt, completion, gold, step: the policy's samples so far), the stage
            that holds it, and the gold labels that retraining used.
        pool: scored on the best-of-n pool (False for a reward people give, which only a
            trainer asks for).
        stand_in: the reward measured (and normalised) as this one's proxy when this one cannot
            be asked at every measurement (a human reward's fallback; None: no proxy).
    """

    name: str
    kind: str
    fn: RewardFn
    key: Any
    params: int = 0
    meta: dict = field(default_factory=dict)
    isolate: bool = False
    refresh: Callable[[Any], tuple[RewardFn, StageResult, int]] | None = None
    pool: bool = True
    stand_in: Reward | None = None

    def cache_key(self) -> Any:
        return {"reward": self.name, "kind": self.kind, "key": self.key}


def columns_for(task: Any, prompts: Sequence[str]) -> dict[str, list]:
    """The task's per-prompt dataset columns (e.g. a reference answer), one value per prompt;
    {} for a task without ``columns``. Rewards receive them as keyword arguments, as TRL passes a
    dataset's columns."""
    fn = getattr(task, "columns", None)
    if fn is None:
        return {}
    cols = fn(list(prompts))
    for k, v in cols.items():
        if len(v) != len(prompts):
            raise RewardLabError(
                f"task column {k!r} has {len(v)} values for {len(prompts)} prompts"
            )
    return {k: list(v) for k, v in cols.items()}
