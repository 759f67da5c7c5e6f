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
