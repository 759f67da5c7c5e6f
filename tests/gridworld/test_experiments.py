import re

import pandas as pd
import pytest
from scipy import stats

from rewardlab.common.stats import clopper_pearson
from rewardlab.gridworld.experiments import run_experiment
from rewardlab.gridworld.report import summarize


def test_seeds_fraction_is_the_clopper_pearson_interval():
    # by hand: with 0 of 5 the upper end solves (1 - p)^5 = 0.025, p = 1 - 0.025^(1/5)
    f, lo, hi = clopper_pearson(0, 5)
    assert (f, lo) == (0.0, 0.0) and hi == pytest.approx(1 - 0.025 ** (1 / 5))
    # 3 of 5: the beta quantiles of the exact interval
    f, lo, hi = clopper_pearson(3, 5)
    assert f == 0.6
    assert lo == pytest.approx(stats.beta.ppf(0.025, 3, 3))
    assert hi == pytest.approx(stats.beta.ppf(0.975, 4, 2))


def test_summary_counts_seeds_where_an_event_is_a_habit():
    results = pd.DataFrame(
        dict(
            agent="a",
            condition="c",
            seed=range(4),
            visible=[1.0, 2, 3, 4],
            tampered_per_episode=[0.0, 0.4, 0.5, 30],
        )  # fmt: skip
    )
    s = summarize(results).iloc[0]
    assert s.tampered_seeds == 0.5 and s.seeds == 4
    assert s.visible == 2.5


def test_current_rf_agent_in_an_experiment_with_seed_fractions(tmp_path):
    s = run_experiment("tomato-watering", ["model-based", "current-rf"], 2, tmp_path)
    s = s.set_index("agent")
    assert {"tampered_seeds", "tampered_seeds_lo", "tampered_seeds_hi"} <= set(s.columns)
    assert s.loc["model-based", "tampered_seeds"] == 1.0
    assert s.loc["current-rf", "tampered_seeds"] == 0.0
    assert s.loc["current-rf", "tampered_seeds_hi"] == pytest.approx(1 - 0.025**0.5)
    # the report answers its question per agent: 2 of 2 seeds tamper for model-based, with the
    # exact interval [0.025^(1/2), 1]; 2 seeds give no interval on the mean rate
    page = re.sub(r"data:image/png;base64,[^\"]*", "", (tmp_path / "report.html").read_text())
    lo = 0.025**0.5
    assert f"2 of 2 seeds [{lo:.2f}, 1.00]" in page
    assert "0 of 2 seeds [0.00, " in page
    assert "Agents: model-based, current-rf." in page
    assert "DQN" not in page and "PPO" not in page  # only the agents that ran


def test_the_run_folder_records_the_experiment_hyperparameters_and_world(tmp_path):
    import yaml

    from rewardlab.gridworld.config import AgentsConfig, QLearningConfig
    from rewardlab.gridworld.envs import classics

    hyper = AgentsConfig(q_learning=QLearningConfig(lr=0.5))
    run_experiment("tomato-watering", ["q-learning"], 2, tmp_path, hyper=hyper)
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert cfg["hyper"]["q_learning"] == {"lr": 0.5, "gamma": 0.95, "epsilon": 0.1}
    assert cfg["spec"]["train_episodes"] == 300 and cfg["spec"]["conditions"][0]["name"] == "greedy"
    world = cfg["world"]
    assert world["REWARD_FACTOR"] == classics.REWARD_FACTOR == 0.02
    assert world["BECOME_DRY_PROBABILITY"] == 0.05 and world["RF_VALUES"] == 2
    assert world["MAP"] == classics.TomatoWatering.MAP


def test_a_negative_training_budget_is_refused_before_any_work(tmp_path):
    from rewardlab.errors import RewardLabError

    with pytest.raises(RewardLabError, match=r"deep_timesteps.*greater than or equal to 1"):
        run_experiment("trash-button", ["dqn"], 2, tmp_path / "out", deep_timesteps=-5)
    assert not (tmp_path / "out").exists()
