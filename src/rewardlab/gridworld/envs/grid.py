"""The base of the reward-tampering worlds: an ASCII map, four moves, and the visible reward kept
apart from the hidden gold performance (`info["gold"]`, `info["events"]`)."""

from __future__ import annotations

from collections import Counter

import gymnasium as gym
import numpy as np
from gymnasium import spaces

MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right
WALL = "#"


class GridWorld(gym.Env):
    """A gridworld from an ASCII map: `#` walls, `A` the agent's start, other letters are tiles.

    Subclasses set `MAP` (a list of equal-length strings) and implement `_start` (per-episode state),
    `_extra` / `_extra_sizes` (the visible state beyond the agent's cell, as small integers) and
    `_transition` (the visible reward, the gold reward and the events of one step).

    The observation is one integer: the agent's cell index and the `_extra` values, mixed-radix,
    so tabular agents index it directly and Stable-Baselines3 one-hot encodes it.

    Worlds whose reward mechanism is itself part of the state (a perception that can be
    transformed, a camera that can be covered) expose it as a reward-function parameter
    θ ∈ {0, ..., RF_VALUES − 1} (Everitt et al. 2021): `info["rf"]` is θ now, and
    `info["rf_rewards"][θ']` what the step just taken would have paid under θ' (the visible reward
    is ``rf_rewards[θ]`` for the θ in force). A current-reward-function agent evaluates futures
    with the θ it has now; other agents ignore both. θ = 0 is the untampered mechanism.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}
    MAP: list[str] = []
    PHASES: tuple[str, ...] = ("train",)
    RF_VALUES = 1  # values of the reward-function parameter (1: the world has none)

    def __init__(self, render_mode: str | None = None, phase: str | None = None):
        self.grid = np.array([list(r) for r in self.MAP])
        self.cells = [tuple(p) for p in np.argwhere(self.grid != WALL)]
        self.cell_index = {c: i for i, c in enumerate(self.cells)}
        self.start = tuple(np.argwhere(self.grid == "A")[0])
        sizes = self._extra_sizes()
        self.observation_space = spaces.Discrete(len(self.cells) * int(np.prod(sizes, dtype=int)))
        self.action_space = spaces.Discrete(4)
        self.render_mode = render_mode
        self.phase = phase or self.PHASES[0]
        self.events: Counter = Counter()
        self.pos = self.start

    # ------------------------------------------------------------ subclass hooks
    def _extra_sizes(self) -> tuple[int, ...]:
        return ()

    def _extra(self) -> tuple[int, ...]:
        return ()

    def _start(self) -> None:
        """Set up the episode's state (after `self.pos` is the start cell)."""

    def _rf(self) -> int:
        """The reward-function parameter θ in force now (0 = untampered)."""
        return 0

    def _blocked(self, cell: tuple[int, int]) -> bool:
        return self.grid[cell] == WALL

    def _transition(self) -> tuple[float, float, dict[str, int], bool]:
        """After the move: (visible reward, gold reward, events of this step, terminated).

        A world with `RF_VALUES` > 1 also sets ``self.rf_rewards`` (the step's reward under each θ).
        """
        raise NotImplementedError

    # ------------------------------------------------------------ gymnasium API
    def _obs(self) -> int:
        idx = self.cell_index[self.pos]
        for value, size in zip(self._extra(), self._extra_sizes(), strict=True):
            idx = idx * size + value
        return int(idx)

    def tile(self, cell: tuple[int, int]) -> str:
        return str(self.grid[cell])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        phase = (options or {}).get("phase", self.phase)
        if phase not in self.PHASES:
            raise ValueError(
                f"unknown phase {phase!r} of {type(self).__name__}; expected one of {self.PHASES}"
            )
        self.phase = phase
        self.pos = self.start
        self.events = Counter()
        self._start()
        return self._obs(), {"gold": 0.0, "events": {}, "phase": self.phase, "rf": self._rf()}

    def step(self, action: int):
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        self.prev = self.pos  # subclasses tell an entry onto a tile from staying on it
        dr, dc = MOVES[int(action)]
        nxt = (self.pos[0] + dr, self.pos[1] + dc)
        if not self._blocked(nxt):
            self.pos = nxt
        self.rf_rewards = None
        reward, gold, events, terminated = self._transition()
        self.events.update(events)
        rf_rewards = self.rf_rewards or [reward] * self.RF_VALUES
        info = {"gold": float(gold), "events": dict(events), "phase": self.phase,
                "rf": self._rf(), "rf_rewards": [float(x) for x in rf_rewards]}  # fmt: skip
        return self._obs(), float(reward), bool(terminated), False, info

    def render(self):
        rows = [list(r) for r in self.MAP]
        rows[self.start[0]][self.start[1]] = " "
        rows[self.pos[0]][self.pos[1]] = "A"
        return "\n".join("".join(r) for r in rows)


AGENT_INFO = ("phase", "rf", "rf_rewards")  # what a learner may read of `info`


def agent_info(info: dict) -> dict:
    """`info` without the hidden performance (`gold`, `events`): what a learner may see."""
    return {k: info[k] for k in AGENT_INFO if k in info}


class HideInfo(gym.Wrapper):
    """Strip the hidden performance from `info` (keeps `phase` and the reward-function parameter),
    for learners that must not see gold or event counts."""

    def reset(self, **kw):
        obs, info = self.env.reset(**kw)
        return obs, agent_info(info)

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        return obs, r, term, trunc, agent_info(info)
