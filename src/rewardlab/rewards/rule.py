"""The task's rule (the gold reward, or the verifiable reward of RLVR) as a reward function."""

from __future__ import annotations

from collections.abc import Sequence

from rewardlab.tasks.base import Task, checked_gold


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
