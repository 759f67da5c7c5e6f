"""rewardlab: a laboratory for learned reward functions and the ways optimisation against them goes wrong."""

from rewardlab.errors import RewardLabError

__all__ = ["RewardLabError"]
__version__ = "0.1.0"
