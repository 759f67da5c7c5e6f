"""The comparisons at matched KL on planted tables whose answers are computed by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from rewardlab.report.sweep.matched import eval_vs_gen, frontier, learned_vs_rule
from tests.report.test_sweep_analyses import rl_curve, summary_rows


def test_learned_vs_rule_finds_the_smallest_size_within_one_se():
    def metric(p, seed):
        return dict(final_gold={10: 0.1, 100: 0.75, 1000: 0.9}[p] + 0.0 * seed, peak_gold=1.0)

    learned = summary_rows({0: [10, 100, 1000], 1: [10, 100, 1000]}, metric, optimizer="rl")
    rule = pd.DataFrame([dict(study=f"r{s}", seed=s, optimizer="rl", reward="rule", reducer="rule",
                              params=0, train_pairs=np.nan, policy_params=7, final_gold=g,
                              peak_gold=g) for s, g in ((0, 0.7), (1, 0.9))])  # fmt: skip
    t, smallest = learned_vs_rule(pd.concat([learned, rule]), pd.DataFrame())
    # rule: mean 0.8, se = std([0.7, 0.9]) / sqrt(2) = 0.1, so the bar is 0.7
    assert t.rule_se.iloc[0] == pytest.approx(0.1)
    assert t.reaches.tolist() == [False, True, True]
    assert smallest == {"params": 100}
    assert set(t.compared_at) == {"final step"}  # no curves: at equal steps


def test_learned_vs_rule_compares_at_matched_kl_when_the_curves_are_there():
    # the rule's curve in every study: KL 0, 2, 8 with gold 0, 0.6, 1.0. Learned runs stop at
    # KL 2: size 10 ends at gold 0.6 ± 0.02 (the rule's gold at KL 2: gap 0 by hand), size 1
    # at 0.2 (gap -0.4). At equal steps size 10 (0.6) misses the rule's final 1.0 by far.
    rows, rl = [], []
    for seed, off in ((0, -0.02), (1, 0.02)):
        for p, g in ((1, 0.2), (10, 0.6 + off)):
            st = f"s{seed}-{p}"
            rows += [dict(study=st, seed=seed, optimizer="grpo", reward="rm", reducer="single",
                          params=p, train_pairs=100, policy_params=7, final_gold=g, final_kl=2.0,
                          peak_gold=g),
                     dict(study=st, seed=seed, optimizer="grpo", reward="rule", reducer="rule",
                          params=0, train_pairs=np.nan, policy_params=7, final_gold=1.0,
                          final_kl=8.0, peak_gold=1.0)]  # fmt: skip
            rl += [dict(study=st, seed=seed, optimizer="grpo", reward="rule", step=s, kl=k,
                        gold=gg, gold_se_norm=0.01, family="trained")
                   for s, k, gg in ((0, 0, 0), (10, 2, 0.6), (20, 8, 1.0))]  # fmt: skip
    t, smallest = learned_vs_rule(pd.DataFrame(rows), pd.DataFrame(rl))
    t = t.set_index("x")
    assert set(t.compared_at) == {"matched KL"}
    assert t.loc[10, "gap"] == pytest.approx(0.0) and t.loc[1, "gap"] == pytest.approx(-0.4)
    assert t.loc[10, "gap_se"] == pytest.approx(0.02)  # std(-0.02, 0.02) / sqrt(2)
    assert smallest == {"params": 10}


def planted_frontier(gap_of, offsets=(-0.02, 0.0, 0.02), sizes=(10, 100, 1000)):
    """RL against learned rewards with final gold 1 + gap, gap = gap_of(params, pairs) + a
    per-seed offset; the rule's curve ends at KL 2 with gold 1, the learned runs at KL 5,
    passing gold 1 + gap - 0.3 at KL 2."""
    summ, rl = [], []
    for seed, off in enumerate(offsets):
        for p in sizes:
            for n in (100, 1000):
                study = f"s{seed}-{p}-{n}"
                gap = gap_of(p, n) + off
                for reward, reducer in (("rm", "single"), ("rule", "rule")):
                    summ.append(dict(study=study, seed=seed, optimizer="grpo", reward=reward,
                                     reducer=reducer, params=p if reward == "rm" else 0,
                                     train_pairs=n if reward == "rm" else math.nan,
                                     policy_params=7))  # fmt: skip
                rl.append(
                    rl_curve("rm", 0.0, seed, [0, 2, 5], [0, 1 + gap - 0.3, 1 + gap]).assign(
                        study=study
                    )
                )
                rl.append(rl_curve("rule", 0.0, seed, [0, 1, 2], [0, 0.5, 1]).assign(study=study))
    return pd.DataFrame(summ), pd.concat(rl, ignore_index=True)


def linear(intercept):
    return lambda p, n: intercept + 0.5 * math.log10(p) + 0.25 * math.log10(n)


# the 95% t interval over three seeds offset by -0.02, 0, +0.02: ± 4.303 · 0.02 / √3
H = 4.302653 * 0.02 / math.sqrt(3)


def test_frontier_finds_the_planted_cells_and_brackets_the_crossing():
    cells, crossing = frontier(*planted_frontier(linear(-2.0)))
    c = cells.set_index(["params", "train_pairs"])
    # gap_final: learned final gold minus the rule's last gold (its KL 5 is beyond the rule's)
    assert c.loc[(100, 1000), "gap_final"] == pytest.approx(-2 + 1 + 0.75)
    assert c.loc[(100, 1000), "gap_final_se"] == pytest.approx(0.02 / math.sqrt(3))
    assert c.loc[(100, 1000), "gap_final_ci95"] == pytest.approx(H, rel=1e-5)
    assert c.loc[(100, 1000), "gap_stop"] == pytest.approx(-0.25 - 0.3)
    # a cell reaches when its interval lies above -0.2: gaps 0 and +0.25 do, -0.25 does not
    reaching = set(c.index[c.gap_final_reaches])
    assert reaching == {(1000, 100), (1000, 1000)}
    x = crossing["gap_final"]
    assert x["kind"] == "measured" and x["cells"] == [(1000.0, 100.0)]
    assert x["not_reaching_below"] == [(100.0, 100.0)] and x["bracketed"]
    # stopped at the rule's KL every gap is 0.3 lower: (1000, 1000) at -0.05 - H > -0.2 reaches,
    # bracketed by (100, 1000) at -0.55 and (1000, 100) at -0.3
    assert set(c.index[c.gap_stop_reaches]) == {(1000, 1000)}
    y = crossing["gap_stop"]
    assert y["cells"] == [(1000.0, 1000.0)]
    assert set(y["not_reaching_below"]) == {(100.0, 1000.0), (1000.0, 100.0)}


def test_frontier_fits_a_logistic_when_no_cell_reaches_and_reports_it_inside_the_data():
    # gap = -1 / (1 + exp(3 (log10 p - 2))) at the largest pairs; seeds offset by ±0.3, so no
    # cell's interval clears -0.2. The logistic meets -0.2 where exp(3 (u - 2)) = 4:
    # u = 2 + ln 4 / 3 = 2.4621 (290 parameters), inside the sizes tried (10 to 1000)
    def gap(p, n):
        return -1 / (1 + math.exp(3 * (math.log10(p) - 2))) - (0.5 if n == 100 else 0.0)

    cells, crossing = frontier(*planted_frontier(gap, offsets=(-0.3, 0.0, 0.3)))
    assert not cells.gap_final_reaches.any()
    x = crossing["gap_final"]
    assert x["kind"] == "fitted" and x["at_pairs"] == 1000
    assert x["log10_params"] == pytest.approx(2 + math.log(4) / 3, abs=1e-4)
    assert x["params_lo"] <= 10 ** x["log10_params"] <= x["params_hi"]


def test_frontier_reports_no_crossing_when_the_fit_meets_the_margin_outside_the_data():
    # linear in log size, -2.75 .. -1.75 at the largest pairs: far from -0.2 at 1,000 parameters
    cells, crossing = frontier(*planted_frontier(linear(-4.0)))
    assert not cells.gap_final_reaches.any()
    x = crossing["gap_final"]
    assert x["kind"] == "none"
    assert x["largest"] == {"params": 1000.0, "train_pairs": 1000.0, "gap": pytest.approx(-1.75)}


def test_eval_vs_gen_ratio_and_hacked_flag():
    rows = []
    for seed, off in ((0, -0.05), (1, 0.0), (2, 0.05)):
        for pp in (100, 1000):
            for p in (10, 1000):
                drop = 0.5 if pp > p else 0.0  # a policy larger than its reward model hacks it
                rows.append(dict(study=f"{seed}-{pp}-{p}", seed=seed, optimizer="bon", reward="rm",
                                 reducer="single", params=p, train_pairs=500, policy_params=pp,
                                 peak_gold=1.0, final_gold=1 - drop, gold_drop=drop + off))  # fmt: skip
    t = eval_vs_gen(pd.DataFrame(rows)).set_index(["policy_params", "params"])
    assert t.loc[(1000, 10), "ratio"] == pytest.approx(0.01)
    assert t.loc[(1000, 10), "gold_drop"] == pytest.approx(0.5) and t.loc[(1000, 10), "hacked"]
    assert not t.loc[(100, 1000), "hacked"]  # fall 0 ± 0.12 over seeds
    assert t.loc[(100, 10), "hacked"] and not t.loc[(1000, 1000), "hacked"]


def test_eval_vs_gen_compares_policies_at_matched_kl():
    # the small policy's curve is (KL, gold) (0, 0), (2, 1.0); the large one's goes on to
    # (6, 0.5). At equal steps they differ by 0.5; at the matched KL 2 (the smallest final KL)
    # both read 1.0. Seed 1's curves are shifted by 0.1 nats: at KL 2 both read 1.9 / 2.0.
    rows, rl = [], []
    for seed in (0, 1):
        for pp, curve in ((100, ((0, 0.0), (2, 1.0))), (1000, ((0, 0.0), (2, 1.0), (6, 0.5)))):
            for p in (10, 1000):
                st = f"{seed}-{pp}-{p}"
                last = curve[-1][1]
                rows.append(dict(study=st, seed=seed, optimizer="grpo", reward="rm",
                                 reducer="single", params=p, train_pairs=500, policy_params=pp,
                                 peak_gold=1.0, final_gold=last, gold_drop=1.0 - last))  # fmt: skip
                rl += [dict(study=st, seed=seed, optimizer="grpo", reward="rm", step=10 * i,
                            kl=k + 0.1 * seed, gold=g) for i, (k, g) in enumerate(curve)]  # fmt: skip
    t = eval_vs_gen(pd.DataFrame(rows), pd.DataFrame(rl)).set_index(["policy_params", "params"])
    assert t.loc[(1000, 10), "final_gold"] == pytest.approx(0.5)
    assert t.loc[(1000, 10), "matched_kl"] == pytest.approx(2.0)  # seed 0's small policy
    for cell in ((100, 10), (1000, 10), (100, 1000), (1000, 1000)):
        assert t.loc[cell, "gold_at_matched_kl"] == pytest.approx((1.0 + 0.95) / 2)
