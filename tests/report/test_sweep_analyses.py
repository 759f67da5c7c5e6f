import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rewardlab.report.sweep import (
    ensembles,
    kl_penalty,
    learned_vs_rule,
    scaling,
)


def summary_rows(params_by_seed, metric_fn, reducer="single", optimizer="bon", **extra):
    rows = []
    for seed, params in params_by_seed.items():
        for p in params:
            rows.append(dict(study=f"s{seed}-{p}", seed=seed, optimizer=optimizer, reward=f"rm{p}",
                             reducer=reducer, params=p, train_pairs=100 + seed, policy_params=7,
                             **metric_fn(p, seed), **extra))  # fmt: skip
    return pd.DataFrame(rows)


def test_scaling_recovers_a_planted_log_linear_trend_and_skips_confounded_axes():
    def metric(p, seed):
        lx = math.log10(p)
        return dict(alpha=0.5 + 0.2 * lx + 0.01 * seed, beta=0.3 - 0.05 * lx, peak_gold=lx,
                    peak_kl=2 * lx, gold_drop=-0.1 * lx)  # fmt: skip

    s = summary_rows({0: [10, 100, 1000], 1: [10, 100, 1000]}, metric)
    sc = scaling(s).set_index("metric")
    assert set(sc.axis) == {"params"}  # train_pairs differs by seed only: not an axis
    assert sc.loc["alpha", "slope"] == pytest.approx(0.2)
    assert sc.loc["beta", "slope"] == pytest.approx(-0.05)
    assert sc.loc["peak_kl", "slope"] == pytest.approx(2)
    assert sc.loc["alpha", "n"] == 6
    s.loc[s.params == 1000, "train_pairs"] = 5  # data size now moves with model size
    assert scaling(s).empty


def test_ensembles_table_groups_by_noise_and_reducer():
    rows = []
    for flip in (0.0, 0.25):
        for red, drop in (("single", 0.3), ("mean", 0.2), ("min", 0.1), ("uwo", 0.15)):
            for seed in (0, 1, 2):
                rows.append(dict(optimizer="bon", flip_rate=flip, reducer=red, seed=seed,
                                 peak_gold=1.0, final_gold=1 - drop - flip + 0.01 * seed,
                                 gold_drop=drop + flip))  # fmt: skip
    t = ensembles(pd.DataFrame(rows))
    assert t.reducer.tolist() == ["single", "mean", "min", "uwo"] * 2
    row = t[(t.flip_rate == 0.25) & (t.reducer == "min")].iloc[0]
    assert row.gold_drop == pytest.approx(0.35) and row.seeds == 3
    assert row.final_gold == pytest.approx(1 - 0.35 + 0.01)
    assert row.final_gold_ci95 == pytest.approx(stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3))


def rl_curve(reward, beta, seed, kls, golds):
    return pd.DataFrame(dict(optimizer="grpo", reward=reward, beta=beta, seed=seed, step=range(len(kls)),
                             kl=kls, gold=golds))  # fmt: skip


def test_kl_penalty_compares_with_the_unpenalised_curve_at_the_same_kl():
    # beta = 0: gold = kl on [0, 4]; beta = 0.1 stops at kl 2 with gold 2 (on the curve, early
    # stopping) in seed 0 and gold 2.5 (0.5 above the curve) in seed 1
    rl = pd.concat(
        [
            rl_curve("rm", 0.0, 0, [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]),
            rl_curve("rm", 0.0, 1, [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]),
            rl_curve("rm", 0.1, 0, [0, 1, 2], [0, 1, 2]),
            rl_curve("rm", 0.1, 1, [0, 1.5, 2], [0, 1, 2.5]),
        ]
    )
    t = kl_penalty(rl).set_index("beta")
    assert t.loc[0.1, "gold_minus_unpenalised"] == pytest.approx(0.25)
    assert t.loc[0.1, "diff_se"] == pytest.approx(0.25)  # std([0, 0.5]) / sqrt(2)
    assert t.loc[0.1, "final_kl"] == pytest.approx(2) and t.loc[0.0, "final_gold"] == 4
    assert t.loc[0.0, "diff_seeds"] == 0


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


def test_levels_pool_per_seed_values_of_one_rank():
    from rewardlab.report.sweep import levels

    d = pd.DataFrame(dict(seed=[0, 0, 1, 1], train_pairs=[800, 6637, 800, 6705]))
    assert levels(d, "train_pairs").tolist() == [800, 6671, 800, 6671]


def test_an_axis_within_five_percent_counts_as_fixed():
    from rewardlab.report.sweep import varies_alone

    d = pd.DataFrame(dict(seed=0, policy_params=[1e4, 1e5, 1e6], params=29_000,
                          train_pairs=[6634, 6651, 6711]))  # fmt: skip
    assert varies_alone(d, "policy_params", 3) and not varies_alone(d, "train_pairs", 3)
    d["train_pairs"] = [800, 1600, 6711]
    assert not varies_alone(d, "policy_params", 3)
