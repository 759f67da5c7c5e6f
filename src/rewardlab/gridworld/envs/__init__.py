"""Reward-tampering gridworlds, registered with gymnasium as ``rewardlab/<Name>-v0``.

The reward the agent sees and the hidden gold performance are kept apart: `info["gold"]` and
`info["events"]` each step; `HideInfo` strips them for learners.
"""

from gymnasium.envs.registration import register, registry

from rewardlab.gridworld.envs.classics import AbsentSupervisor, TomatoWatering
from rewardlab.gridworld.envs.coins import CoinShop
from rewardlab.gridworld.envs.feedback import HiddenFeedback, HiddenFeedbackCamera
from rewardlab.gridworld.envs.grid import GridWorld, HideInfo
from rewardlab.gridworld.envs.helper import RewardButton, RewardButtonSlowTask
from rewardlab.gridworld.envs.trash import TrashButton

ENVS = {
    "rewardlab/TomatoWatering-v0": (TomatoWatering, 100),
    "rewardlab/AbsentSupervisor-v0": (AbsentSupervisor, 100),
    "rewardlab/TrashButton-v0": (TrashButton, 50),
    "rewardlab/CoinShop-v0": (CoinShop, 50),
    "rewardlab/HiddenFeedback-v0": (HiddenFeedback, 60),
    "rewardlab/HiddenFeedbackCamera-v0": (HiddenFeedbackCamera, 60),
    "rewardlab/RewardButton-v0": (RewardButton, 50),
    "rewardlab/RewardButtonSlowTask-v0": (RewardButtonSlowTask, 50),
}

for _id, (_cls, _steps) in ENVS.items():
    if _id not in registry:
        register(id=_id, entry_point=f"{_cls.__module__}:{_cls.__name__}", max_episode_steps=_steps)

__all__ = [
    "ENVS",
    "AbsentSupervisor",
    "CoinShop",
    "HiddenFeedback",
    "HiddenFeedbackCamera",
    "RewardButton",
    "RewardButtonSlowTask",
    "GridWorld",
    "HideInfo",
    "TomatoWatering",
    "TrashButton",
]
