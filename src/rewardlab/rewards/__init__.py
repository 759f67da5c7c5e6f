"""Reward sources behind one interface, TRL's: ``f(prompts, completions, **kw) -> list[float]``.

`KINDS` maps each kind to its module (``Config`` and ``build``); `RewardSpec` is the union a
study's ``rewards:`` list is validated against. Adding a kind = one module here and its test.
"""

from typing import Annotated

from pydantic import Field

from rewardlab.rewards import (
    classifier,
    demos,
    ensemble,
    function,
    human,
    learned,
    likelihood_ratio,
    program,
    rule,
)
from rewardlab.rewards.base import RULE, Reward, RewardContext
from rewardlab.rewards.ensemble import REDUCERS, EnsembleReward, reduce_scores
from rewardlab.rewards.function import FunctionReward
from rewardlab.rewards.learned import LearnedReward, train_reward_model
from rewardlab.rewards.program import ProgramReward
from rewardlab.rewards.rule import RuleReward

KINDS = {
    "rule": rule,
    "learned": learned,
    "ensemble": ensemble,
    "function": function,
    "classifier": classifier,
    "demos": demos,
    "likelihood_ratio": likelihood_ratio,
    "program": program,
    "human": human,
}

RewardSpec = Annotated[
    rule.Config
    | learned.Config
    | ensemble.Config
    | function.Config
    | classifier.Config
    | demos.Config
    | likelihood_ratio.Config
    | program.Config
    | human.Config,
    Field(discriminator="kind"),
]

__all__ = [
    "KINDS",
    "REDUCERS",
    "RULE",
    "EnsembleReward",
    "FunctionReward",
    "LearnedReward",
    "ProgramReward",
    "Reward",
    "RewardContext",
    "RewardSpec",
    "RuleReward",
    "reduce_scores",
    "train_reward_model",
]
