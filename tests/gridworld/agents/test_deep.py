import gymnasium as gym
import numpy as np
import pandas as pd

import rewardlab.gridworld.envs  # noqa: F401
from rewardlab.gridworld.agents.deep import SB3Agent, WithOptions
from rewardlab.gridworld.experiments import run_experiment


def test_options_reach_every_reset_and_gold_stays_hidden():
    env = WithOptions(gym.make("rewardlab/TrashButton-v0"), {"phase": "test"})
    _, info = env.reset(seed=0)
    assert info["phase"] == "test"
    agent = SB3Agent("dqn", "rewardlab/TrashButton-v0", 0)
    wrapped = agent._make({"phase": "test"})
    _, info = wrapped.reset(seed=0)
    _, _, _, _, info = wrapped.step(0)
    assert "gold" not in info and "events" not in info  # hidden from the learner
    assert info == {"phase": "test", "rf": 0, "rf_rewards": [0.0]}


def test_dqn_and_ppo_run_in_an_experiment(tmp_path):
    # plumbing with a tiny budget: the numbers are not meant to show learning
    summary = run_experiment("trash-button", ["dqn", "ppo"], 2, tmp_path, deep_timesteps=600)
    assert set(summary.agent) == {"dqn", "ppo"}
    results = pd.read_csv(tmp_path / "results.csv")
    assert len(results) == 2 * 2 * 2  # agents x seeds x conditions
    # the loop's accounting against the world's rule: visible = trash + presses, gold = trash
    from rewardlab.gridworld.envs import trash

    rate = results.trash_per_episode
    presses = results.get("button_per_episode", 0.0)
    assert np.allclose(results.gold, trash.TRASH_REWARD * rate)
    assert np.allclose(results.visible, trash.TRASH_REWARD * rate + trash.BUTTON_REWARD * presses)
    assert (tmp_path / "report.html").is_file()


def test_training_writes_no_log_folder_in_the_temporary_folder(tmp_path, monkeypatch):
    """SB3's default logger makes a /tmp/SB3-<time>/ folder per model; the agents' does not."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    for algo in ("dqn", "ppo"):
        SB3Agent(algo, "rewardlab/TrashButton-v0", 0).train(100)
    assert list(tmp_path.iterdir()) == []
