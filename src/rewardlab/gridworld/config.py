"""Typed configs of the gridworld lab: an experiment (world, phases, conditions), the agents'
hyperparameters and one run, written to the run folder with the world's constants."""

from __future__ import annotations

import sys
from typing import Any

from pydantic import Field

from rewardlab.specs import Strict


class Condition(Strict):
    """An evaluation after training."""

    name: str = Field(..., description="the condition's name in the tables")
    options: dict[str, Any] = Field(default_factory=dict, description="options for env.reset")
    learn: bool = Field(False, description="the agent keeps learning (and exploring)")
    episodes: int = Field(20, ge=1, description="episodes run in this condition")
    keep: int = Field(20, ge=1, description="the last `keep` episodes are reported")


class Experiment(Strict):
    """A thought experiment: a world, how agents are trained in it, and how they are tested."""

    env_id: str = Field(..., description="registered gymnasium id of the world")
    train_episodes: int = Field(..., ge=1, description="training episodes of tabular agents")
    train_options: dict[str, Any] = Field(
        default_factory=dict, description="options for env.reset during training"
    )
    conditions: list[Condition] = Field(..., min_length=1, description="evaluations, in order")
    rates: list[str] = Field(..., description="event counts reported per episode")
    question: str = Field(..., description="what the experiment asks")
    deep_timesteps: int = Field(
        30_000, ge=1, description="environment steps of the Stable-Baselines3 agents"
    )


class QLearningConfig(Strict):
    """Tabular Q-learning with epsilon-greedy exploration."""

    lr: float = Field(0.2, gt=0, le=1, description="step size of the Q update")
    gamma: float = Field(0.95, ge=0, lt=1, description="discount")
    epsilon: float = Field(0.1, ge=0, le=1, description="probability of a random action")


class PlannerConfig(Strict):
    """Value iteration on a learned model (model-based and current-reward-function agents)."""

    gamma: float = Field(0.95, ge=0, lt=1, description="discount")
    epsilon: float = Field(0.1, ge=0, le=1, description="probability of a random action")
    plan_every: int = Field(100, ge=1, description="updates between re-plans")


class AgentsConfig(Strict):
    """Hyperparameters of every agent kind."""

    q_learning: QLearningConfig = Field(default_factory=QLearningConfig, description="q-learning")
    model_based: PlannerConfig = Field(default_factory=PlannerConfig, description="model-based")
    current_rf: PlannerConfig = Field(default_factory=PlannerConfig, description="current-rf")


class RunConfig(Strict):
    """One `rewardlab gridworld run`, fully resolved (written as config.yaml)."""

    experiment: str = Field(..., description="the experiment's name")
    agents: list[str] = Field(..., min_length=1, description="agent kinds, one run each")
    seeds: int = Field(..., ge=2, description="independent seeds per agent")
    spec: Experiment = Field(..., description="the experiment as run")
    hyper: AgentsConfig = Field(default_factory=AgentsConfig, description="agent hyperparameters")
    world: dict[str, Any] = Field(
        default_factory=dict, description="the world's constants (rewards, probabilities, map)"
    )


def world_constants(cls: type) -> dict[str, Any]:
    """The named constants of a world: its module's upper-case numbers and strings and its
    class's upper-case attributes (map, phases, reward-function values)."""

    def plain(v):
        if isinstance(v, bool | int | float | str):
            return v
        if isinstance(v, list | tuple) and all(isinstance(x, bool | int | float | str) for x in v):
            return list(v)
        return None

    out = {}
    module = vars(sys.modules[cls.__module__])
    for k, v in module.items():
        if k.isupper() and plain(v) is not None:
            out[k] = plain(v)
    for k in dir(cls):
        if k.isupper() and plain(getattr(cls, k)) is not None:
            out[k] = plain(getattr(cls, k))
    return out
