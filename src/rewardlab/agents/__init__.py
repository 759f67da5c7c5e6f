"""Agents for the reward-tampering worlds."""

from rewardlab.agents.tabular import QLearning, run_episodes

__all__ = ["QLearning", "run_episodes"]
