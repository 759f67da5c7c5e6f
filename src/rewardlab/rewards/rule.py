"""The task's rule (the gold reward, or the verifiable reward of RLVR) as a reward function."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from rewardlab.rewards.base import RULE, Reward, RewardBase
from rewardlab.tasks.base import Task, checked_gold

if TYPE_CHECKING:  # a type only: the context is built by the study
    from rewardlab.context import StudyContext

STAGES = ()  # the cache stages it builds (`rewardlab run --rebuild` names them)


class Config(RewardBase):
    """The task's own gold rule (always available as `rule`; list it to give it another name)."""

    name: str = Field(RULE, description="the name optimizers use for the rule")
    kind: Literal["rule"] = Field("rule", description="reward source: the task's gold rule")


class RuleReward:
    """``RuleReward(task)(prompts, completions) -> list[float]``: the task's gold, checked.

    A gold function that raises or returns a non-finite value gives a `RewardLabError` naming
    the task and the sample.
    """

    def __init__(self, task: Task):
        self.task = task
        self.__name__ = f"rule:{task.name}"

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kw) -> list[float]:
        return checked_gold(self.task, prompts, completions)


def build(cfg: Config, ctx: StudyContext) -> list[Reward]:
    """The rule of the study's task (its identity is the task config, file content included)."""
    return [Reward(cfg.name, "rule", RuleReward(ctx.task), key={"task": ctx.task_cfg.cache_key()})]
