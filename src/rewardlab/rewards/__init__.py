"""Reward sources behind one interface, TRL's: ``f(prompts, completions, **kw) -> list[float]``.

`KINDS` maps each kind to its module (``Config`` and ``build``); the study's ``rewards:`` list is
validated against the union of their configs (`specs.kind_union`) and each reward is built by its
config's own module (`specs.module_of`). Adding a kind = one module here, its test, and its line
in `KINDS`.
"""

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
from rewardlab.rewards.base import RULE, Reward
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

__all__ = [
    "KINDS",
    "REDUCERS",
    "RULE",
    "EnsembleReward",
    "FunctionReward",
    "LearnedReward",
    "ProgramReward",
    "Reward",
    "RuleReward",
    "reduce_scores",
    "train_reward_model",
]
