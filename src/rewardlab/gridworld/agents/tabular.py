"""Tabular Q-learning, and the loop that runs any agent while recording visible and gold returns."""

from __future__ import annotations

from collections import Counter

import gymnasium as gym
import numpy as np
import pandas as pd

from rewardlab.gridworld.envs.grid import agent_info
from rewardlab.seeding import derive

HIDDEN = ("gold", "events", "rf", "rf_rewards")  # info keys not copied into the episode rows


class EpsilonGreedy:
    """Acting on a table `self.q`: a random action with probability `self.epsilon` (when
    exploring), else a greedy one, ties broken at random with `self.rng`."""

    q: np.ndarray
    epsilon: float
    rng: np.random.Generator

    def act(self, s: int, explore: bool = True) -> int:
        if explore and self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.q.shape[1]))
        best = np.flatnonzero(self.q[s] == self.q[s].max())
        return int(self.rng.choice(best))


class QLearning(EpsilonGreedy):
    """Watkins' Q-learning with epsilon-greedy exploration (Sutton & Barto 2018, eq. 6.8):

        Q(s, a) <- Q(s, a) + lr * (r + gamma * max_a' Q(s', a') * (1 - terminated) - Q(s, a))

    Ties between greedy actions are broken at random with the agent's own generator.
    """

    def __init__(self, n_states: int, n_actions: int, *, lr: float = 0.1, gamma: float = 0.95,
                 epsilon: float = 0.1, seed: int = 0):  # fmt: skip
        self.q = np.zeros((n_states, n_actions))
        self.lr, self.gamma, self.epsilon = lr, gamma, epsilon
        self.rng = np.random.default_rng(seed)

    def update(self, s: int, a: int, r: float, s2: int, terminated: bool) -> None:
        target = r + (0.0 if terminated else self.gamma * self.q[s2].max())
        self.q[s, a] += self.lr * (target - self.q[s, a])


def run_episodes(
    env: gym.Env,
    agent,
    episodes: int,
    *,
    learn: bool = True,
    explore: bool = True,
    seed: int = 0,
    options: dict | None = None,
) -> pd.DataFrame:
    """Run `episodes` episodes; one row each: visible return, gold return, steps and event counts.

    Episode `ep` resets the world with the stream (seed, "episode", ep). The agent sees only
    observations and visible rewards (and, if it has an ``observe`` method,
    the reward-function parameter of `info`, through `agent_info`); gold and events are read from
    `info` by this loop, never passed to the agent.
    """
    observe = getattr(agent, "observe", None)
    rows = []
    for ep in range(episodes):
        s, info = env.reset(seed=derive(seed, "episode", ep), options=options)
        if observe:
            observe(agent_info(info))
        visible = gold = 0.0
        events: Counter = Counter()
        steps, done = 0, False
        while not done:
            a = agent.act(s, explore=explore)
            s2, r, terminated, truncated, info = env.step(a)
            if observe:
                observe(agent_info(info))
            if learn:
                agent.update(s, a, r, s2, terminated)
            visible += r
            gold += info["gold"]
            events.update(info["events"])
            s, steps, done = s2, steps + 1, terminated or truncated
        rows.append(dict(episode=ep, visible=visible, gold=gold, steps=steps, **events,
                         **{k: v for k, v in info.items() if k not in HIDDEN}))  # fmt: skip
    return pd.DataFrame(rows).fillna(0)
