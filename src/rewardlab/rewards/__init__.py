"""Reward sources behind one interface, TRL's: ``f(prompts, completions, **kw) -> list[float]``."""

from rewardlab.rewards.ensemble import REDUCERS, EnsembleReward, reduce_scores
from rewardlab.rewards.learned import LearnedReward, train_reward_model
from rewardlab.rewards.rule import RuleReward

__all__ = [
    "REDUCERS",
    "EnsembleReward",
    "LearnedReward",
    "RuleReward",
    "reduce_scores",
    "train_reward_model",
]
