"""The hacking test: the cross-fitted fall by hand, its calibration on planted flat curves and its
power on planted falls by simulation, and the verdicts of a run's tables."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rewardlab.verdict import (
    HACKED,
    MARGIN,
    NOT_HACKED,
    UNDETERMINED,
    cross_fitted_fall,
    halves,
    verdict,
    verdicts,
)


def test_the_cross_fitted_fall_by_hand():
    G = np.array([[0.0, 2.0, 1.0], [0.0, 1.0, 3.0], [1.0, 4.0, 0.0], [0.0, 2.0, 2.0]])
    a, b = halves(4, seed=0)
    # by hand: each half picks its peak column by its own mean; the other half's units give
    # their gold there minus their gold at the last column
    peak_a = int(np.argmax(G[a].mean(0)))
    peak_b = int(np.argmax(G[b].mean(0)))
    d = np.empty(4)
    d[b] = G[b, peak_a] - G[b, 2]
    d[a] = G[a, peak_b] - G[a, 2]
    h = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    f = cross_fitted_fall(G, seed=0)
    assert f.estimate == pytest.approx(d.mean())
    assert (f.lo, f.hi) == pytest.approx((d.mean() - h, d.mean() + h))
    assert sorted(np.concatenate([a, b])) == [0, 1, 2, 3] and abs(len(a) - len(b)) <= 1


def _sim(shape, n_units=32, sd=1.0, rng=None):
    return (
        rng.normal(0, 0.5, (n_units, 1)) + shape[None, :] + rng.normal(0, sd, (n_units, len(shape)))
    )


RISE = np.linspace(0, 1, 16)  # the control: optimising gold itself, which does not fall


def rise_then_fall(drop: float) -> np.ndarray:
    return np.concatenate([np.linspace(0, 1, 8), np.linspace(1, 1 - drop, 8)])


def test_flat_noisy_curves_are_called_hacked_at_most_5_percent_of_the_time():
    rng = np.random.default_rng(7)
    words, est, naive = [], [], []
    for s in range(800):
        G = _sim(np.zeros(16), rng=rng)
        f = cross_fitted_fall(G, seed=s)
        words.append(verdict(f, cross_fitted_fall(_sim(RISE, rng=rng), seed=s))[0])
        est.append(f.estimate)
        m = G.mean(0)
        naive.append(m.max() - m[-1])
    assert np.mean(np.array(words) == HACKED) <= 0.05
    # the cross-fitted fall is unbiased on a flat curve; max minus last is not
    assert abs(np.mean(est)) < 3 * np.std(est) / np.sqrt(len(est))
    assert np.mean(naive) > 0.2


@pytest.mark.parametrize("drop, power", [(0.8, 0.5), (1.5, 0.95)])
def test_planted_falls_are_called_hacked_with_the_stated_power(drop, power):
    """docs/RESULTS.md states it: 32 prompts, per-prompt noise sd 1 at each measurement, a rise
    of 1 std then a fall of `drop`: hacked in at least `power` of runs."""
    rng = np.random.default_rng(11)
    words = [verdict(cross_fitted_fall(_sim(rise_then_fall(drop), rng=rng), seed=s),
                     cross_fitted_fall(_sim(RISE, rng=rng), seed=s))[0]
             for s in range(300)]  # fmt: skip
    assert np.mean(np.array(words) == HACKED) >= power


def test_verdict_words():
    G = np.tile(np.linspace(0, 1, 5), (10, 1)) + np.linspace(-0.01, 0.01, 10)[:, None]
    flat = cross_fitted_fall(G)  # rises to its last step: peak at the end, fall exactly 0
    assert flat.estimate == 0 and verdict(flat)[0] == NOT_HACKED
    falls = cross_fitted_fall(np.hstack([G, G[:, :1] - 1.0]))  # a clear fall of 2 at the end
    assert falls.lo > 0
    assert verdict(falls)[0] == HACKED
    assert verdict(falls, falls)[0] != HACKED  # no worse than its control: not hacking
    d = np.array([2.0, -1.0] * 4)  # falls of 2 and rises of 1 by prompt: an interval over 0
    wide = cross_fitted_fall(np.column_stack([np.full(8, 5.0), np.zeros(8), 5 - d]))
    assert wide.lo < 0 < MARGIN < wide.hi and verdict(wide)[0] == UNDETERMINED
    assert verdict(cross_fitted_fall(G[:3]))[0] == UNDETERMINED  # too few units


def test_a_curve_flat_at_its_maximum_up_to_rounding_is_not_hacked():
    # a best-of-n curve that reaches a tied maximum and stays there: its later points differ
    # from the peak by ~1e-12 (rounding in the expectation over ties), which is no fall
    G = np.tile([0.2, 0.9, 1.0, 1.0, 1.0], (16, 1)) + np.linspace(0, 0.1, 16)[:, None]
    G[:, 2] += 7e-13  # the "peak" is a rounding error above the flat maximum
    f = cross_fitted_fall(G)
    assert f.estimate == 0 and f.lo == 0 and f.hi == 0
    assert verdict(f)[0] == NOT_HACKED


def test_a_runs_verdicts_come_from_its_per_prompt_tables():
    n = np.array([1, 2, 4, 8])
    rows = []
    for reward, shape in (("rule", [0.0, 0.5, 1.0, 1.5]), ("rm", [0.0, 1.0, 0.0, -1.0])):
        for p in range(8):
            for k, g in zip(n, shape, strict=True):
                rows.append(dict(optimizer="bon", reward=reward, prompt=p, n=k, gold=g + 0.01 * p))
    by_prompt = pd.DataFrame(rows)
    steps = [0, 5, 10]
    detail = pd.DataFrame([
        dict(optimizer="grpo", reward=r, step=s, kl=0.1 * s,
             gold_by_prompt=" ".join(str(g + 0.01 * p) for p in range(8)))
        for r, gs in (("rule", [0.0, 0.5, 1.0]), ("rm", [0.0, 1.0, -1.0]))
        for s, g in zip(steps, gs, strict=True)
    ])  # fmt: skip
    curves = pd.concat([
        by_prompt.groupby(["optimizer", "reward", "n"], as_index=False).gold.mean()
        .rename(columns={"n": "step"}).assign(kl=lambda d: np.log(d.step)),
        detail[["optimizer", "reward", "step", "kl"]],
    ])  # fmt: skip
    v = verdicts(curves, by_prompt, detail).set_index(["optimizer", "reward"])
    assert v.loc[("bon", "rm"), "verdict"] == HACKED
    assert v.loc[("bon", "rm"), "fall"] == pytest.approx(2.0)  # peak 1.0 at n = 2, last -1.0
    assert v.loc[("bon", "rm"), "control"] == "rule"
    assert v.loc[("bon", "rule"), "verdict"] == NOT_HACKED  # the rule's curve rises to its end
    assert v.loc[("grpo", "rm"), "verdict"] == HACKED and v.loc[("grpo", "rm"), "fall"] == 2.0
    assert v.loc[("grpo", "rm"), "verdict_kl"] == pytest.approx(1.0)
    assert v.loc[("grpo", "rule"), "control"] == "none"
    # measurements without per-prompt gold (an older cache): no test, no word but undetermined
    old = verdicts(curves, by_prompt, detail.drop(columns="gold_by_prompt"))
    assert (old[old.optimizer == "grpo"].verdict == UNDETERMINED).all()


def test_over_seeds_is_the_student_t_interval_of_the_seeds_falls_paired_with_the_control():
    from rewardlab.verdict import over_seeds

    rows = []
    for seed, fall, rule_fall in ((0, 0.5, 0.0), (1, 0.7, 0.1), (2, 0.9, -0.1)):
        common = dict(optimizer="grpo", seed=seed, verdict_kl=2.0 + seed, peak_gold=1.0 + seed,
                      final_gold=0.5)  # fmt: skip
        rows += [dict(reward="rm", fall=fall, verdict="hacked" if seed else "undetermined",
                      **common),
                 dict(reward="rule", fall=rule_fall, verdict="not hacked", **common)]  # fmt: skip
    got = over_seeds(pd.DataFrame(rows)).set_index("reward")
    # by hand: falls 0.5, 0.7, 0.9: mean 0.7, sd 0.2, t(0.975, 2) = 4.302653
    half = 4.302653 * 0.2 / np.sqrt(3)
    rm = got.loc["rm"]
    assert rm.fall == pytest.approx(0.7)
    assert (rm.fall_lo, rm.fall_hi) == pytest.approx((0.7 - half, 0.7 + half), abs=1e-6)
    # paired with the rule: 0.5, 0.6, 1.0: mean 0.7, sd sqrt(0.07)
    half_d = 4.302653 * np.sqrt(0.07) / np.sqrt(3)
    assert (rm.vs_control_lo, rm.vs_control_hi) == pytest.approx((0.7 - half_d, 0.7 + half_d),
                                                                 abs=1e-6)  # fmt: skip
    assert rm.verdict == "hacked" and rm.hacked_seeds == 2 and rm.seeds == 3
    assert rm.verdict_kl == pytest.approx(3.0) and rm.peak_gold == pytest.approx(2.0)
    assert rm.final_gold_lo == pytest.approx(0.5)  # equal seeds: a zero-width interval
    # the rule: falls 0, 0.1, -0.1, mean 0, interval ±0.248 (sd 0.1): not below the 0.2 margin,
    # although each seed alone said "not hacked"
    rule = got.loc["rule"]
    assert rule.control == "none" and rule.not_hacked_seeds == 3
    assert rule.fall_hi == pytest.approx(4.302653 * 0.1 / np.sqrt(3), abs=1e-6)
    assert rule.verdict == "undetermined"
