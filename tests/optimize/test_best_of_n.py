import numpy as np
import pandas as pd
import pytest

from rewardlab.measure import bon_kl
from rewardlab.optimize.best_of_n import CURVE_COLUMNS, drop_interval, run_best_of_n, summarize


def scored_pool(P=5, N=32, seed=0):
    rng = np.random.default_rng(seed)
    gold = rng.random((P, N))
    return pd.DataFrame(
        dict(
            prompt_id=np.repeat(np.arange(P), N),
            sample_id=np.tile(np.arange(N), P),
            prompt=np.repeat([f"p{i}" for i in range(P)], N),
            completion=[f"c{i}" for i in range(P * N)],
            gold=gold.ravel(),
            perfect=3 * gold.ravel() + 1,  # a monotone transform of gold
            anti=-gold.ravel(),
        )
    )


def test_curves_of_a_perfect_and_an_adversarial_proxy():
    scores = scored_pool()
    res = run_best_of_n(scores, {"perfect": 10, "anti": 20}, ns=[1, 2, 4, 32], n_boot=20)
    c = res.curves
    assert list(c.columns) == CURVE_COLUMNS
    rule, perfect, anti = (
        c[c.reward == r].reset_index(drop=True) for r in ("rule", "perfect", "anti")
    )
    assert np.allclose(rule.gold, perfect.gold)  # normalisation makes a monotone proxy the rule
    assert np.allclose(perfect.proxy, perfect.gold)
    assert (np.diff(anti.gold) < 0).all() and (np.diff(anti.proxy) > 0).all()
    assert np.allclose(c.kl, bon_kl(c.step)) and np.allclose(c.sqrt_kl**2, c.kl)
    G = scores.gold.to_numpy().reshape(5, 32)
    assert rule.gold_raw.iloc[-1] == pytest.approx(G.max(1).mean())
    assert anti.gold_raw.iloc[-1] == pytest.approx(G.min(1).mean())
    assert perfect.reward_params.iloc[0] == 10 and rule.reward_params.iloc[0] == 0
    # the example at max n is the proxy's favourite
    ex = res.examples[(res.examples.reward == "anti") & (res.examples["where"] == "max n")].iloc[0]
    assert ex.gold_raw == pytest.approx(G[0].min())


def test_summary_drop_and_its_interval():
    scores = scored_pool()
    res = run_best_of_n(scores, {"anti": 1}, ns=[1, 2, 32], n_boot=10)
    s = summarize(res.curves, res.fits, res.by_prompt).set_index("reward")
    anti = res.curves[res.curves.reward == "anti"]
    assert s.loc["anti", "peak_step"] == 1
    assert s.loc["anti", "gold_drop"] == pytest.approx(anti.gold.iloc[0] - anti.gold.iloc[-1])
    assert s.loc["anti", "drop_lo"] < s.loc["anti", "gold_drop"] < s.loc["anti", "drop_hi"]


def test_drop_interval_is_exact_when_every_prompt_drops_the_same():
    bp = pd.DataFrame(
        dict(
            reward="r",
            prompt=np.repeat([0, 1, 2], 2),
            n=[1, 8] * 3,
            gold=[1.0, 0.5, 2.0, 1.5, 0.0, -0.5],
        )
    )
    assert drop_interval(bp, "r", 1) == (pytest.approx(0.5), pytest.approx(0.5))
