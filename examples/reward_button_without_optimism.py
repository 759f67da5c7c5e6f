"""Are the lock-ins of the reward-button slow-task world deliberate or exploration?

Trains each planner through the experiment's phases (as `rewardlab gridworld run
reward-button-slow-task` does), then switches the R-max optimism off, re-plans, and evaluates
greedily in the test phase. A planner that still locks the helper in values it under its own
reward model; one that no longer does was led there by optimistic exploration.

python examples/reward_button_without_optimism.py
"""

import gymnasium as gym

import rewardlab.gridworld.envs  # noqa: F401  (registers the ids)
from rewardlab.gridworld.agents import run_episodes
from rewardlab.gridworld.config import AgentsConfig
from rewardlab.gridworld.experiments import EXPERIMENTS, TABULAR
from rewardlab.seeding import derive

exp = EXPERIMENTS["reward-button-slow-task"]
for name in ("model-based", "current-rf"):
    for seed in range(5):
        env = gym.make(exp.env_id)
        agent = TABULAR[name](env, AgentsConfig(), derive(seed, "gridworld", name))  # as the run
        run_episodes(env, agent, exp.train_episodes, seed=derive(seed, "gridworld", name, "train"),
                     options=exp.train_options)  # fmt: skip
        for c in exp.conditions:
            run_episodes(env, agent, c.episodes, learn=c.learn, explore=c.learn,
                         seed=derive(seed, "gridworld", name, c.name), options=c.options)  # fmt: skip
        agent.optimism = 0.0
        agent.plan()
        ev = run_episodes(
            env, agent, 20, learn=False, explore=False, seed=7, options={"phase": "test"}
        )
        locks, presses, tasks = (
            float(ev[k].mean()) if k in ev else 0.0
            for k in ("blocked_helper", "self_press", "task")
        )
        print(f"{name} seed {seed}: locks {locks:.2f}, self-presses {presses:.1f}, tasks "
              f"{tasks:.1f} per episode", flush=True)  # fmt: skip
