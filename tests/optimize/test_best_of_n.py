import numpy as np
import pandas as pd
import pytest

from rewardlab.measure import bon_kl
from rewardlab.optimize.best_of_n import run_best_of_n
from rewardlab.optimize.curves import CURVE_COLUMNS, drop_interval, summarize


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
    assert np.allclose(c.kl, bon_kl(c.step)) and np.allclose(c.sqrt_kl**2, c.kl)  # no ties
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


def test_the_rules_kl_is_exact_under_its_ties():
    """A gold that ties (every value shared by two samples of a prompt): the rule's best-of-n KL
    is the exact KL of best-of-n under the pool, sum over values of m log(m / p) with
    m = F_hi^n - F_lo^n (validated against enumeration in tests/test_measure.py)."""
    rng = np.random.default_rng(1)
    P, N = 4, 32
    gold = np.repeat(rng.integers(0, 5, size=(P, N // 2)) / 4, 2, axis=1)
    scores = scored_pool(P, N)
    scores["gold"] = gold.ravel()
    scores["perfect"] = 3 * gold.ravel() + 1
    res = run_best_of_n(scores, {"perfect": 1}, ns=[1, 2, 4, 32], n_boot=5)
    rule = res.curves[res.curves.reward == "rule"]
    for n, kl in zip(rule.step, rule.kl, strict=True):
        per_prompt = []
        for row in gold:
            _, counts = np.unique(row, return_counts=True)
            hi = np.cumsum(counts) / N
            m = hi**n - (hi - counts / N) ** n
            per_prompt.append(np.sum(m[m > 0] * np.log(m[m > 0] / (counts[m > 0] / N))))
        assert kl == pytest.approx(np.mean(per_prompt), abs=1e-12)
        assert kl <= bon_kl(n) + 1e-12
    assert rule.kl.iloc[-1] < 0.8 * bon_kl(32)
    perfect = res.curves[res.curves.reward == "perfect"]
    assert np.allclose(perfect.kl, rule.kl)  # a monotone transform ties where gold does
