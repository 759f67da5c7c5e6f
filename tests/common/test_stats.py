import math

import numpy as np
import pytest
from scipy import stats

from rewardlab.common.stats import fit_line, mean_ci


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
