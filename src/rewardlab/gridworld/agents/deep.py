"""Deep-RL agents from Stable-Baselines3 (DQN, PPO) behind the same act/update interface.

SB3 trains in its own loop (`train`); `act` asks the trained network. The environment handed to
SB3 is wrapped so that every reset carries the experiment's options (its phase) and the hidden
performance never reaches the learner.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from rewardlab.gridworld.envs.grid import HideInfo


class WithOptions(gym.Wrapper):
    """Pass fixed `options` to every `reset` (SB3 resets without options)."""

    def __init__(self, env: gym.Env, options: dict | None):
        super().__init__(env)
        self.options = options or None

    def reset(self, *, seed=None, options=None):
        return self.env.reset(seed=seed, options=options or self.options)


class SB3Agent:
    """`algo` is ``dqn`` or ``ppo``; hyperparameters are SB3's defaults scaled to small worlds."""

    def __init__(self, algo: str, env_id: str, seed: int):
        self.algo, self.env_id, self.seed = algo, env_id, seed
        self.model = None

    def _make(self, options):
        return HideInfo(WithOptions(gym.make(self.env_id), options))

    def train(self, timesteps: int, options: dict | None = None) -> None:
        """Learn for `timesteps` environment steps on an environment reset with `options`."""
        from stable_baselines3 import DQN, PPO
        from stable_baselines3.common.logger import Logger

        env = self._make(options)
        if self.model is None:
            if self.algo == "dqn":
                self.model = DQN("MlpPolicy", env, seed=self.seed, learning_starts=500, buffer_size=20_000,
                                 exploration_fraction=0.3, target_update_interval=500, verbose=0, device="cpu")  # fmt: skip
            else:
                self.model = PPO(
                    "MlpPolicy",
                    env,
                    seed=self.seed,
                    n_steps=512,
                    batch_size=64,
                    verbose=0,
                    device="cpu",
                )
            # a logger of its own that writes nothing: SB3's default makes /tmp/SB3-<time>/
            self.model.set_logger(Logger(folder=None, output_formats=[]))
        else:
            self.model.set_env(env)
        self.model.learn(total_timesteps=timesteps, reset_num_timesteps=False)

    def act(self, s: int, explore: bool = True) -> int:
        action, _ = self.model.predict(np.array(s), deterministic=not explore)
        return int(action)

    def update(self, *args) -> None:
        """SB3 learns in `train`; the shared episode loop does not update it."""
