"""The one context every reward source and optimizer is built from: the study's task, seed and
device, its base-policy and preference stages, the rewards built so far, the scored pool, and
the stage runner that records each stage for the run folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from rewardlab.cache import Cache, StageResult
from rewardlab.preferences import PreferenceConfig
from rewardlab.specs import SamplingConfig
from rewardlab.tasks import Task, TaskConfig, split_prompts

if TYPE_CHECKING:  # a type only: importing the rewards' package would load every reward kind
    from rewardlab.rewards.base import Reward


@dataclass
class StudyContext:
    """What a reward source's ``build`` and an optimizer's ``run`` may use.

    Attributes:
        rewards: every reward built so far, by name: a reward source sees those listed before
            it, an optimizer all of them (the rule's among them).
        scores: the base policy's held-out pool with one column per reward (the rule's is
            ``gold``); None until the rewards are built.
        stages: every stage used so far, under its run-folder label.
    """

    task: Task
    task_cfg: TaskConfig
    seed: int
    cache: Cache
    policy: StageResult
    preferences: StageResult
    preference_cfg: PreferenceConfig
    sampling: SamplingConfig
    device: str = "cpu"
    log: Callable[[str], None] = print
    rewards: dict[str, Reward] = field(default_factory=dict)
    scores: pd.DataFrame | None = None
    stages: dict[str, StageResult] = field(default_factory=dict)

    def prompts(self, split: str, n: int) -> list[str]:
        """The first `n` prompts of `split` (`tasks.split_prompts`): ``rl`` to train on, ``bon``
        held out (the pool's and every measurement's), ``preferences``, ``sft``."""
        return split_prompts(self.task, split, n, self.seed)

    def stage(
        self,
        label: str,
        name: str,
        fn: Callable[..., None],
        shown_as: str | None = None,
        resumable: bool = False,
        **inputs,
    ) -> StageResult:
        """Build stage `name` via the cache (`Cache.run`; `resumable` gives it a work folder that
        survives a kill) and record it under `label` for the run folder; its log lines name it
        ``[name shown_as]`` (default `label`)."""
        res = self.cache.run(name, fn, resumable=resumable, shown_as=shown_as or label, **inputs)
        self.stages[label] = res
        return res
