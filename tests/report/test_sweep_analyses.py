import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rewardlab.report.sweep.analyses import (
    ensembles,
    kl_penalty,
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


def test_levels_pool_per_seed_values_of_one_rank():
    from rewardlab.report.sweep.analyses import levels

    d = pd.DataFrame(dict(seed=[0, 0, 1, 1], train_pairs=[800, 6637, 800, 6705]))
    assert levels(d, "train_pairs").tolist() == [800, 6671, 800, 6671]


def test_an_axis_within_five_percent_counts_as_fixed():
    from rewardlab.report.sweep.analyses import varies_alone

    d = pd.DataFrame(dict(seed=0, policy_params=[1e4, 1e5, 1e6], params=29_000,
                          train_pairs=[6634, 6651, 6711]))  # fmt: skip
    assert varies_alone(d, "policy_params", 3) and not varies_alone(d, "train_pairs", 3)
    d["train_pairs"] = [800, 1600, 6711]
    assert not varies_alone(d, "policy_params", 3)


# ---------------------------------------------------------------- issue 12: planted sweeps


def test_rm_accuracy_means_intervals_and_rises_per_size():
    rows = []
    acc = {10: 0.6, 100: 0.7, 1000: 0.68}  # the largest size falls back: rises is False there
    for seed, off in ((0, -0.01), (1, 0.0), (2, 0.01)):
        for p, a in acc.items():
            rows.append(dict(study=f"s{seed}-{p}", seed=seed, params=p, train_pairs=500 + seed,
                             policy_params=7, test_accuracy=a + off, train_accuracy=a + 0.1,
                             acc_margin_0_1=0.5, acc_margin_1_2=a + 2 * off))  # fmt: skip
    from rewardlab.report.sweep.analyses import rm_accuracy

    t = rm_accuracy(pd.DataFrame(rows)).set_index("x")
    assert list(t.index) == [10, 100, 1000] and set(t.axis) == {"params"}
    assert t.loc[100, "test_accuracy"] == pytest.approx(0.7)
    assert t.loc[100, "test_accuracy_ci95"] == pytest.approx(
        stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)
    )
    assert t.loc[1000, "acc_margin_1_2_ci95"] == pytest.approx(
        stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3)
    )
    assert t.loc[100, "train_accuracy"] == pytest.approx(0.8)
    assert math.isnan(t.loc[10, "rises"]) and t.loc[100, "rises"] and not t.loc[1000, "rises"]
    # paired by seed: every seed moves by exactly +0.1, then -0.02 (offsets cancel in Δ_s)
    assert t.loc[100, "step"] == pytest.approx(0.1) and t.loc[1000, "step"] == pytest.approx(-0.02)
    assert t.loc[100, "rises_in_seeds"] == 3 and t.loc[1000, "rises_in_seeds"] == 0
    assert t.loc[100, "paired_seeds"] == 3 and math.isnan(t.loc[10, "step"])


def test_rm_accuracy_counts_the_seeds_whose_own_step_rises():
    # seed 2's larger model is worse though the mean rises: 2 of 3 seeds rise
    acc = {(0, 10): 0.60, (0, 100): 0.70, (1, 10): 0.62, (1, 100): 0.66, (2, 10): 0.65,
           (2, 100): 0.64}  # fmt: skip
    rows = [dict(study=f"s{s}-{p}", seed=s, params=p, train_pairs=500, policy_params=7,
                 test_accuracy=a, train_accuracy=a) for (s, p), a in acc.items()]  # fmt: skip
    from rewardlab.report.sweep.analyses import rm_accuracy

    t = rm_accuracy(pd.DataFrame(rows)).set_index("x")
    d = np.array([0.10, 0.04, -0.01])
    assert t.loc[100, "rises_in_seeds"] == 2 and t.loc[100, "step"] == pytest.approx(d.mean())
    assert t.loc[100, "step_ci95"] == pytest.approx(
        stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    )


def test_gao_findings_verdicts_follow_the_interval_and_the_stated_direction():
    from rewardlab.report.sweep.analyses import gao_findings

    fits = pd.DataFrame(
        [
            dict(axis="params", optimizer="bon", metric="alpha", slope=0.1, slope_lo=0.02, slope_hi=0.2, n=15),
            dict(axis="params", optimizer="bon", metric="beta", slope=0.04, slope_lo=0.01, slope_hi=0.07, n=15),
            dict(axis="params", optimizer="bon", metric="peak_kl", slope=0.3, slope_lo=-0.5, slope_hi=1.1, n=15),
            dict(axis="params", optimizer="grpo", metric="alpha", slope=0.05, slope_lo=-0.02, slope_hi=0.1, n=15),
            dict(axis="params", optimizer="grpo", metric="beta", slope=-0.1, slope_lo=-0.2, slope_hi=-0.01, n=15),
            dict(axis="policy_params", optimizer="bon", metric="peak_kl", slope=1.0, slope_lo=0.5, slope_hi=1.5, n=9),
            dict(axis="params", optimizer="bon", metric="fit_rmse", slope=1.0, slope_lo=0.5, slope_hi=1.5, n=9),
        ]
    )  # fmt: skip
    g = gao_findings(fits).set_index(["axis", "optimizer", "metric"]).verdict.to_dict()
    assert g[("params", "bon", "alpha")] == "reproduced"
    assert g[("params", "bon", "beta")] == "not reproduced"  # Gao: falls; here it rises
    assert g[("params", "bon", "peak_kl")] == "not established"
    assert g[("params", "grpo", "alpha")] == "reproduced"  # Gao: no trend; interval holds 0
    assert g[("params", "grpo", "beta")] == "reproduced"
    assert g[("policy_params", "bon", "peak_kl")] == "not reproduced"
    assert len(g) == 6  # a metric Gao states nothing about is left out


def test_scaling_within_fits_each_axis_at_fixed_levels_of_the_other():
    from rewardlab.report.sweep.analyses import gao_findings, scaling_within

    rows = []
    for seed in (0, 1):
        for p in (10, 100, 1000):
            for n in (100, 1000, 10000):
                lx, ln = math.log10(p), math.log10(n)
                rows.append(dict(study=f"{seed}-{p}-{n}", seed=seed, optimizer="bon", reward="rm",
                                 reducer="single", params=p, train_pairs=n, policy_params=7,
                                 alpha=0.1 * lx + 0.3 * ln + 0.01 * seed, beta=0.0, peak_gold=0.0,
                                 peak_kl=0.0, gold_drop=-0.2 * ln))  # fmt: skip
    s = pd.DataFrame(rows)
    assert scaling(s).empty  # both axes vary: neither alone
    w = scaling_within(s)
    a = w[w.metric == "alpha"].set_index(["axis", "held_value"]).slope
    assert a[("train_pairs", 10)] == pytest.approx(0.3) and a[("params", 1000)] == pytest.approx(
        0.1
    )
    g = gao_findings(w)
    drop = g[(g.axis == "train_pairs") & (g.metric == "gold_drop")]
    assert (
        len(drop) == 3
        and (drop.verdict == "reproduced").all()
        and set(drop.held_axis) == {"params"}
    )


def test_scaling_within_fits_a_set_of_studies_once():
    from rewardlab.report.sweep.analyses import scaling_within

    rows = []
    for seed in (0, 1):
        for pp, pairs in ((10, 400), (100, 500), (1000, 450)):  # pairs follow the policy
            for p in (10, 100, 1000):
                rows.append(dict(study=f"{seed}-{pp}-{p}", seed=seed, optimizer="bon", reward="rm",
                                 reducer="single", params=p, train_pairs=pairs + seed,
                                 policy_params=pp, alpha=0.1 * math.log10(p), beta=0.0,
                                 peak_gold=0.0, peak_kl=0.0, gold_drop=0.0))  # fmt: skip
    w = scaling_within(pd.DataFrame(rows))
    alpha = w[(w.metric == "alpha") & (w.axis == "params")]
    assert len(alpha) == 3 and alpha.slope.to_numpy() == pytest.approx([0.1] * 3)


def test_by_reward_pairs_each_reward_with_the_rule_by_seed():
    from rewardlab.report.sweep.analyses import by_reward

    rows = []
    for seed, (rule, clf) in enumerate([(1.0, 0.5), (1.2, 0.7), (1.1, 0.9)]):
        for reward, kind, final in (("rule", "rule", rule), ("clf", "classifier", clf)):
            rows.append(dict(study=f"s{seed}", seed=seed, optimizer="grpo", reward=reward,
                             kind=kind, peak_gold=final + 0.25, final_gold=final,
                             gold_drop=0.25, final_kl=2.0 + seed))  # fmt: skip
    t = by_reward(pd.DataFrame(rows)).set_index("reward")
    diffs = np.array([0.5 - 1.0, 0.7 - 1.2, 0.9 - 1.1])
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / np.sqrt(3)
    assert t.loc["clf", "minus_rule"] == pytest.approx(diffs.mean())
    assert t.loc["clf", "minus_rule_ci95"] == pytest.approx(half)
    assert t.loc["clf", "final_gold"] == pytest.approx(0.7) and t.loc["clf", "kind"] == "classifier"
    assert t.loc["rule", "final_kl"] == pytest.approx(3.0) and np.isnan(t.loc["rule", "minus_rule"])
    assert t.loc["clf", "seeds"] == 3


def test_gap_to_rule_reads_the_rules_curve_at_the_proxys_final_kl():
    from rewardlab.report.sweep.analyses import gap_to_rule

    rule = {("s0", "bon"): pd.DataFrame(dict(kl=[0.0, 1.0, 2.0], gold=[0.0, 0.5, 0.8]))}
    rows = pd.DataFrame([
        dict(study="s0", optimizer="bon", reward="rm", final_gold=0.4, final_kl=1.5),
        dict(study="s0", optimizer="bon", reward="rm2", final_gold=0.9, final_kl=5.0),
        dict(study="s0", optimizer="bon", reward="rule", final_gold=0.8, final_kl=2.0),
        dict(study="s1", optimizer="bon", reward="rm", final_gold=0.4, final_kl=1.5),
    ])  # fmt: skip
    got = gap_to_rule(rows, rule)
    assert got[0] == pytest.approx(0.4 - 0.65)  # halfway between 0.5 and 0.8
    assert got[1] == pytest.approx(0.9 - 0.8)  # beyond the rule's KL: its last gold
    assert math.isnan(got[2]) and math.isnan(got[3])  # the rule itself; a study without it
