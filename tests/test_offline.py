"""Offline scores against brute force, hand computation and planted rewards with known answers."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from rewardlab.offline import (
    best_of_k_accuracy,
    epic_distance,
    error_tail,
    hill_tail_index,
    offline_scores,
    pairwise_accuracy,
    spearman_within,
)


def _small(seed=0, prompts=3, n=9):
    """Discrete gold and proxy with ties in both, a few prompts."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 4, prompts * n) / 3.0
    proxy = np.round(gold + rng.normal(0, 0.4, prompts * n), 1)
    return proxy, gold, np.repeat(np.arange(prompts), n)


def test_pairwise_accuracy_equals_enumerating_the_pairs():
    proxy, gold, groups = _small()
    right = count = 0.0
    by_bin = {}
    for i, j in itertools.combinations(range(len(gold)), 2):
        if groups[i] != groups[j] or gold[i] == gold[j]:
            continue
        hi, lo = (i, j) if gold[i] > gold[j] else (j, i)
        credit = 1.0 if proxy[hi] > proxy[lo] else 0.5 if proxy[hi] == proxy[lo] else 0.0
        right, count = right + credit, count + 1
        margin = gold[hi] - gold[lo]  # gold's range is [0, 1] here
        b = "m0.20_0.40" if margin < 0.4 else "m0.40_1.00"  # margins are 1/3, 2/3 or 1
        by_bin.setdefault(b, []).append(credit)
    got = pairwise_accuracy(proxy, gold, groups)
    assert got["pairs"] == count
    assert got["accuracy"] == pytest.approx(right / count)
    for b, credits in by_bin.items():
        assert got[b] == pytest.approx(np.mean(credits))
    assert np.isnan(got["m0.00_0.05"])


def test_best_of_4_equals_enumerating_every_subset_of_four():
    proxy, gold, groups = _small(seed=3, prompts=2, n=10)
    hit = total = 0
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        for sub in itertools.combinations(idx, 4):
            gs = gold[list(sub)]
            best = np.flatnonzero(gs == gs.max())
            if len(best) > 1:  # no unique gold winner: not a RewardBench-style item
                continue
            w = sub[best[0]]
            total += 1
            hit += all(proxy[w] > proxy[j] for j in sub if j != w)
    assert total > 0
    assert best_of_k_accuracy(proxy, gold, groups, 4) == pytest.approx(hit / total)


def test_spearman_within_is_the_mean_of_rank_correlations_by_hand():
    # two prompts, no ties: Spearman = 1 − 6 Σ d² / (n (n² − 1))
    gold = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    proxy = np.array([2.0, 1.0, 3.0, 4.0, 5.0, 50.0, 40.0, 30.0, 20.0, 10.0])
    groups = np.repeat([0, 1], 5)
    rho0 = 1 - 6 * 2 / (5 * 24)  # ranks differ by 1 at two places
    rho1 = -1.0
    assert spearman_within(proxy, gold, groups) == pytest.approx((rho0 + rho1) / 2)
    # the upper 60% by proxy (3 of 5): prompt 0 keeps samples 4, 3, 2 (ρ = 1), prompt 1 keeps
    # samples 5, 6, 7 (ρ = −1)
    assert spearman_within(proxy, gold, groups, top=0.6) == pytest.approx(0.0)


def test_epic_distance_is_invariant_to_rescaling_and_prompt_shifts():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(20), 50)
    gold = rng.normal(size=1000)
    shift = rng.normal(size=20)[groups] * 5  # any function of the prompt: potential shaping
    assert epic_distance(3.0 * gold + shift, gold, groups) == pytest.approx(0.0, abs=1e-7)
    assert epic_distance(-gold + shift, gold, groups) == pytest.approx(1.0)
    indep = rng.normal(size=1000)
    assert epic_distance(indep, gold, groups) == pytest.approx(math.sqrt(0.5), abs=0.03)


def test_epic_distance_by_hand():
    # two prompts of two samples: centred gold (−1, 1, −1, 1); centred proxy (−1, 1, 1, −1)
    gold = np.array([0.0, 2.0, 5.0, 7.0])
    proxy = np.array([1.0, 3.0, 9.0, 7.0])
    groups = np.array([0, 0, 1, 1])
    assert epic_distance(proxy, gold, groups) == pytest.approx(math.sqrt(0.5))  # ρ = 0


def test_hill_estimator_by_hand_and_on_a_pareto_tail():
    x = np.array([1.0, 8.0, 2.0, 4.0])  # top 2 are 8 and 4 over x_(3) = 2
    assert hill_tail_index(x, 2) == pytest.approx(1 / ((math.log(4) + math.log(2)) / 2))
    rng = np.random.default_rng(0)
    pareto = (1 - rng.random(200_000)) ** (-1 / 2.0)  # P(X > x) = x^-2: α = 2
    assert hill_tail_index(pareto, 2000) == pytest.approx(2.0, rel=0.08)


def test_error_tail_tells_a_heavy_tailed_error_from_a_gaussian_one():
    rng = np.random.default_rng(2)
    gold = rng.normal(size=100_000)
    light = error_tail(gold + rng.normal(size=100_000), gold)
    heavy = error_tail(gold + rng.standard_t(2, size=100_000), gold)  # t(2): α = 2
    assert heavy["error_tail_index"] == pytest.approx(2.0, rel=0.25)
    assert light["error_tail_index"] > 2 * heavy["error_tail_index"]
    assert abs(light["error_kurtosis"]) < 0.1 < heavy["error_kurtosis"]


def test_offline_scores_of_the_gold_itself_and_of_its_negative():
    rng = np.random.default_rng(4)
    n = 2000
    scores = pd.DataFrame({"prompt_id": np.repeat(np.arange(20), 100),
                           "gold": rng.normal(size=n)})  # fmt: skip
    scores["same"] = 2 * scores.gold + 1
    scores["flipped"] = -scores.gold
    t = offline_scores(scores, ["same", "flipped"]).set_index("reward")
    assert (
        t.loc["same", ["accuracy", "spearman", "spearman_top", "best_of_4"]].tolist()
        == [pytest.approx(1.0)] * 4
    )
    assert t.loc["flipped", ["accuracy", "best_of_4"]].tolist() == [0.0, 0.0]
    assert t.loc["flipped", "spearman"] == pytest.approx(-1.0)
    assert t.loc["same", "epic_distance"] == pytest.approx(0.0, abs=1e-7)
    assert t.loc["flipped", "epic_distance"] == pytest.approx(1.0)
    assert t.loc["same", "pairs"] == 20 * 100 * 99 // 2
