"""A toy reward kind kept in a test's own files: minus the distance of a completion's length (in
words) from a target length. Its module is what `rewardlab.specs.module_of` finds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rewardlab.rewards.base import Reward, RewardBase

STAGES = ()  # it builds no stage


class Config(RewardBase):
    """Reward = -|words - target|."""

    kind: Literal["toy_length"] = Field("toy_length", description="the toy reward kind")
    target: int = Field(3, ge=0, description="the length the reward prefers")


def build(cfg: Config, ctx) -> list[Reward]:
    def fn(prompts, completions, **kw):
        return [-abs(len(c.split()) - cfg.target) for c in completions]

    return [Reward(cfg.name, "toy_length", fn, key=cfg.model_dump(mode="json"))]
