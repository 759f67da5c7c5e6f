import math

import numpy as np
import pytest
from scipy import stats

from rewardlab.common.stats import fit_line, fit_line_by_seed, mean_ci


def test_fit_line_matches_scipy_and_exact_lines():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    f = fit_line(x, 2 + 3 * x)
    assert f["slope"] == pytest.approx(3) and f["intercept"] == pytest.approx(2)
    assert f["slope_se"] == pytest.approx(0, abs=1e-9) and f["r2"] == pytest.approx(1)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 5, 30)
    y = 1 - 0.4 * x + rng.normal(0, 1, 30)
    ref = stats.linregress(x, y)
    f = fit_line(x, y)
    assert f["slope"] == pytest.approx(ref.slope) and f["slope_se"] == pytest.approx(ref.stderr)
    h = stats.t.ppf(0.975, 28) * ref.stderr
    assert f["slope_lo"] == pytest.approx(ref.slope - h) and f["r2"] == pytest.approx(ref.rvalue**2)
    assert math.isnan(fit_line(np.array([1.0, 2.0]), np.array([1.0, 2.0]))["slope"])  # n < 3


def test_mean_ci_is_the_t_interval():
    x = np.array([1.0, 2.0, 4.0, np.nan])
    m, se, h, n = mean_ci(x)
    assert (m, n) == (pytest.approx(7 / 3), 3)
    assert se == pytest.approx(np.std([1, 2, 4], ddof=1) / math.sqrt(3))
    assert h == pytest.approx(stats.t.ppf(0.975, 2) * se)
    assert math.isnan(mean_ci(np.array([5.0]))[1])


def test_seed_clustered_slope_is_the_t_interval_over_per_seed_slopes():
    # three seeds, each an exact line: slopes 1, 2 and 6 (by hand), intercepts 0, 1, 2
    x = np.tile([0.0, 1.0, 2.0, 3.0], 3)
    seeds = np.repeat([0, 1, 2], 4)
    y = np.concatenate([0 + 1 * x[:4], 1 + 2 * x[:4], 2 + 6 * x[:4]])
    f = fit_line_by_seed(x, y, seeds)
    assert f["slope"] == pytest.approx(3.0) and f["intercept"] == pytest.approx(1.0)
    se = math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2 / 3)  # sd of (1, 2, 6) / √3
    assert f["slope_se"] == pytest.approx(se)
    assert f["slope_lo"] == pytest.approx(3 - 4.302652729911275 * se)  # t(0.975, 2 dof)
    assert (f["n"], f["seeds"], f["interval_over"]) == (12, 3, "seeds")
    one = fit_line_by_seed(x[:4], y[:4], seeds[:4])  # one seed: the pooled fit over its points
    assert one["interval_over"] == "points" and one["slope"] == pytest.approx(1.0)


def test_seed_clustered_interval_covers_when_seeds_differ_and_pooled_does_not():
    # each seed has its own slope about the common centre, drawn around a true mean slope of 0.5
    # with sd 0.3, and small noise around its line: the seed is the unit. The pooled standard
    # error is then about sd·sqrt(1/13) against the true sd·sqrt(1/3) (residual variance ≈
    # sd²·var(x) over 15 points): its ±2.16 se covers ±1.04 sd of the mean, about 70%
    rng = np.random.default_rng(1)
    x = np.tile(np.log10([684, 2.6e3, 8.3e3, 2.9e4, 1.07e5]), 3)
    seeds = np.repeat([0, 1, 2], 5)
    cover_seed = cover_pool = 0
    trials = 2000
    for _ in range(trials):
        b = 0.5 + rng.normal(0, 0.3, 3)
        y = 0.5 * x + (b[seeds] - 0.5) * (x - x.mean()) + rng.normal(0, 0.05, len(x))
        f, g = fit_line_by_seed(x, y, seeds), fit_line(x, y)
        cover_seed += f["slope_lo"] <= 0.5 <= f["slope_hi"]
        cover_pool += g["slope_lo"] <= 0.5 <= g["slope_hi"]
    assert abs(cover_seed / trials - 0.95) < 0.015  # t over seeds is exact for normal slopes
    assert cover_pool / trials < 0.8  # pooled over points: anti-conservative
