"""Intervals and fitted lines used by every report: Student-t intervals of a mean, the exact
(Clopper-Pearson) interval of a proportion, least-squares lines with a slope interval."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def mean_ci(x: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, standard error and 95% Student-t interval half-width of `x` (NaNs dropped)."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return (math.nan, math.nan, math.nan, 0)
    if n == 1:
        return (float(x[0]), math.nan, math.nan, 1)
    se = float(x.std(ddof=1) / math.sqrt(n))
    return (float(x.mean()), se, float(stats.t.ppf(0.975, n - 1) * se), n)


def fit_line(x: np.ndarray, y: np.ndarray) -> dict:
    """Least squares ``y = a + b·x``; b's standard error and 95% interval (t, n − 2 dof)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = np.asarray(x, float)[ok], np.asarray(y, float)[ok]
    n = len(x)
    if n < 3 or np.ptp(x) == 0:
        return dict(slope=math.nan, slope_se=math.nan, slope_lo=math.nan, slope_hi=math.nan,
                    intercept=math.nan, r2=math.nan, n=n)  # fmt: skip
    b, a = np.polyfit(x, y, 1)
    resid = y - (a + b * x)
    s2 = float(resid @ resid) / (n - 2)
    se = math.sqrt(s2 / float(((x - x.mean()) ** 2).sum()))
    h = stats.t.ppf(0.975, n - 2) * se
    ss = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float(resid @ resid) / ss if ss > 0 else math.nan
    return dict(slope=float(b), slope_se=se, slope_lo=float(b - h), slope_hi=float(b + h),
                intercept=float(a), r2=r2, n=n)  # fmt: skip


def clopper_pearson(k: int, n: int) -> tuple[float, float, float]:
    """k of n, with the exact (Clopper-Pearson) 95% interval of the proportion."""
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    return k / n, float(ci.low), float(ci.high)
