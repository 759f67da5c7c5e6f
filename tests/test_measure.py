import itertools
import math

import numpy as np
import pytest
from scipy import integrate, stats

from rewardlab.measure import (
    bon_curve,
    bon_kl,
    bon_kl_ties,
    bon_weights,
    fit_bon,
    fit_rl,
    normalize,
)


def test_bon_kl_hand_values():
    assert bon_kl(1) == 0.0
    assert bon_kl(2) == pytest.approx(math.log(2) - 0.5)
    assert bon_kl(1024) == pytest.approx(math.log(1024) - 1023 / 1024)
    assert bon_kl(1024) > 5.9


def test_bon_kl_against_the_exact_kl_of_a_discrete_distribution():
    # best-of-n over M equiprobable items with distinct proxy: P(rank j) = (j/M)^n - ((j-1)/M)^n
    M = 200_000
    j = np.arange(1, M + 1)
    for n in (2, 8, 64):
        p = (j / M) ** n - ((j - 1) / M) ** n
        exact = np.sum(p[p > 0] * np.log(p[p > 0] * M))
        assert exact <= bon_kl(n) + 1e-9  # an upper bound...
        assert exact == pytest.approx(bon_kl(n), abs=2e-3)  # ...exact in the continuous limit


def brute_force_bon_kl(values, n):
    """KL(best-of-n || uniform over the pool) by enumerating all N^n ordered draws (with
    replacement): each draw's winner is any drawn sample of the top value, equally likely."""
    N = len(values)
    mass = np.zeros(N)
    for draw in itertools.product(range(N), repeat=n):
        top = max(values[i] for i in draw)
        winners = [i for i in draw if values[i] == top]
        for i in winners:
            mass[i] += 1 / len(winners) / N**n
    assert mass.sum() == pytest.approx(1.0)
    m = mass[mass > 0]
    return float(np.sum(m * np.log(m * N)))


def test_bon_kl_ties_equals_brute_force_when_every_value_is_shared():
    for values in ([0, 0, 1, 1, 1, 2, 2], [3, 3, 3, 3, 1, 1], [5, 5]):
        for n in (1, 2, 3, 4):
            got = bon_kl_ties(np.array([values], float), [n])[0, 0]
            assert got == pytest.approx(brute_force_bon_kl(values, n), abs=1e-12)
            assert got <= bon_kl(n) + 1e-12


def test_bon_kl_ties_is_the_analytic_formula_without_ties_and_its_continuous_limit_with_some():
    rng = np.random.default_rng(0)
    ns = np.array([1, 2, 7, 64, 1024])
    x = rng.normal(size=(3, 1024))
    assert (bon_kl_ties(x, ns) == bon_kl(ns)).all()  # exactly, no ties
    # a pool of 10: four samples share the top value, six are distinct (continuous); refine each
    # distinct sample into M equal-mass distinct values and compute the pool KL level by level
    vals = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0, 1.0, 1.0, 1.0])
    M = 4000
    refined_counts = np.array([1] * (6 * M) + [4 * M])  # sorted levels, masses in units 1/(10 M)
    hi = np.cumsum(refined_counts) / (10 * M)
    lo = hi - refined_counts / (10 * M)
    for n in (2, 5, 30):
        mass = hi**n - lo**n
        exact = np.sum(mass * np.log(mass / (refined_counts / (10 * M))))
        assert bon_kl_ties(vals[None], [n])[0, 0] == pytest.approx(exact, abs=2e-4)
    # the rule of a toy task: 13% of samples tie at the top; best-of-1024's KL is far below 5.93
    top = np.where(rng.random((1, 1024)) < 0.13, 1.0, rng.random((1, 1024)) * 0.9)
    assert bon_kl_ties(top, [1024])[0, 0] < 0.5 * bon_kl(1024)


def test_weights_sum_to_one_even_for_a_huge_pool():
    for N, n in ((8, 3), (1000, 1), (100_000, 5000), (100_000, 100_000)):
        w = bon_weights(N, n)
        assert np.isfinite(w).all() and w.sum() == pytest.approx(1.0)
    assert bon_weights(5, 5).tolist() == [0, 0, 0, 0, 1]


def brute_force(proxy, gold, n):
    """Mean over all size-n subsets of the gold of the highest-proxy sample (ties: averaged)."""
    vals = []
    for subset in itertools.combinations(range(len(proxy)), n):
        top = max(proxy[i] for i in subset)
        vals.append(np.mean([gold[i] for i in subset if proxy[i] == top]))
    return np.mean(vals)


@pytest.mark.parametrize("ties", [False, True])
def test_bon_curve_equals_brute_force(ties):
    rng = np.random.default_rng(0)
    proxy = rng.integers(0, 4, 9).astype(float) if ties else rng.normal(size=9)
    gold = rng.normal(size=9)
    c = bon_curve(proxy, gold, range(1, 10))
    for n in range(1, 10):
        row = c[c.n == n].iloc[0]
        assert row.gold == pytest.approx(brute_force(proxy, gold, n), abs=1e-12)
        assert row.proxy == pytest.approx(brute_force(proxy, proxy, n), abs=1e-12)
    assert c.gold.iloc[0] == pytest.approx(gold.mean())  # n = 1 is the base policy


def test_bon_curve_averages_prompts_and_keeps_per_prompt_rows():
    rng = np.random.default_rng(1)
    proxy, gold = rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
    c = bon_curve(proxy, gold, [1, 2, 6])
    per = bon_curve(proxy, gold, [1, 2, 6], by_prompt=True)
    assert list(c.columns) == ["n", "kl", "proxy", "gold"]
    assert np.allclose(per.groupby("n").gold.mean().to_numpy(), c.gold.to_numpy())
    for p in range(3):
        assert per[(per.prompt == p) & (per.n == 6)].gold.iloc[0] == gold[p, np.argmax(proxy[p])]


def expected_max_normal(n: int) -> float:
    f = lambda x: x * n * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1)  # noqa: E731
    return integrate.quad(f, -12, 12)[0]


def test_bon_curve_analytic_gaussian_case():
    # gold ~ N(0, 1), proxy = gold + sigma * noise: E[gold | best of n by proxy] = e_n / sqrt(1 + s^2)
    rng = np.random.default_rng(2)
    sigma, N = 1.0, 400_000
    gold = rng.normal(size=N)
    proxy = gold + sigma * rng.normal(size=N)
    ns = [1, 4, 16, 64, 256]
    c = bon_curve(proxy, gold, ns)
    for n, g, p in zip(ns, c.gold, c.proxy, strict=True):
        e_n = expected_max_normal(n)
        assert g == pytest.approx(e_n / math.sqrt(1 + sigma**2), abs=0.02)
        assert p == pytest.approx(e_n * math.sqrt(1 + sigma**2), abs=0.03)


def test_bon_curve_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        bon_curve(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        bon_curve(np.array([0.0, np.nan]), np.zeros(2))
    with pytest.raises(ValueError, match="1 <= n <= N"):
        bon_curve(np.zeros(3), np.zeros(3), [4])


def test_normalize():
    x = np.array([1.0, 2.0, 3.0, 6.0])
    z = normalize(x, x)
    assert z.mean() == pytest.approx(0) and z.std() == pytest.approx(1)


def test_fit_bon_recovers_an_exact_curve():
    d = np.linspace(0, 3, 30)
    f = fit_bon(d, d * (1.2 - 0.3 * d))
    assert (f.alpha, f.beta) == (pytest.approx(1.2), pytest.approx(0.3))
    assert f.d_star == pytest.approx(2.0) and f.r_star == pytest.approx(1.2**2 / 1.2)
    assert f.rmse < 1e-12


def test_fit_rl_recovers_an_exact_curve_and_its_peak():
    d = np.linspace(0, 6, 60)
    f = fit_rl(d, d * (0.8 - 0.5 * np.log(np.where(d > 0, d, 1))))
    assert (f.alpha, f.beta) == (pytest.approx(0.8), pytest.approx(0.5))
    grid = np.linspace(1e-6, 10, 200_001)
    r = grid * (0.8 - 0.5 * np.log(grid))
    assert f.d_star == pytest.approx(grid[np.argmax(r)], abs=1e-3)
    assert f.r_star == pytest.approx(r.max(), abs=1e-6)


def test_fit_without_a_peak():
    d = np.linspace(0, 2, 10)
    f = fit_bon(d, d * (1.0 + 0.1 * d))
    assert f.beta < 0 and math.isinf(f.d_star)


def test_bootstrap_interval_covers_the_truth():
    rng = np.random.default_rng(3)
    d = np.linspace(0, 2.5, 25)
    curves = d * (1.0 - 0.25 * d) + rng.normal(0, 0.3, size=(40, 25))
    f = fit_bon(d, curves, n_boot=500)
    lo, hi = f.ci["alpha"]
    assert lo < 1.0 < hi and lo < f.alpha < hi
    assert f.ci["beta"][0] < 0.25 < f.ci["beta"][1]


def test_kl_from_samples_against_exact_categorical_kl():
    from rewardlab.measure import kl_from_samples

    p = np.array([0.5, 0.3, 0.15, 0.05])
    q = np.array([0.25, 0.25, 0.25, 0.25])
    exact = float(np.sum(p * np.log(p / q)))
    rng = np.random.default_rng(0)
    y = rng.choice(4, size=200_000, p=p)
    est = kl_from_samples(np.log(p[y]), np.log(q[y]))
    assert abs(est.k1 - exact) < 4 * est.k1_se
    assert abs(est.k3 - exact) < 4 * est.k3_se
    assert est.k1_se < 0.01


def test_kl_from_samples_is_zero_for_the_same_policy():
    from rewardlab.measure import kl_from_samples

    lp = np.log(np.array([0.2, 0.5, 0.3]))
    est = kl_from_samples(lp, lp)
    assert est.k1 == 0 and est.k3 == 0
