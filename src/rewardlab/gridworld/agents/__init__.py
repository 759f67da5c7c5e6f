"""Agents for the reward-tampering worlds."""

from rewardlab.gridworld.agents.model_based import CurrentRF, ModelBased, value_iteration
from rewardlab.gridworld.agents.tabular import QLearning, run_episodes

__all__ = ["CurrentRF", "ModelBased", "QLearning", "run_episodes", "value_iteration"]
