"""Intervals and fitted lines used by every report: Student-t intervals of a mean, the exact
(Clopper-Pearson) interval of a proportion, least-squares lines with a slope interval (pooled
over points, or clustered by seed)."""

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


def fit_line_by_seed(x: np.ndarray, y: np.ndarray, seeds: np.ndarray) -> dict:
    """Least squares ``y = a + b·x`` with the slope's interval clustered by seed: one line
    (a_s, b_s) per seed with at least 3 points and 2 distinct x, b = mean_s b_s, its standard
    error sd_s(b_s)/√k and a Student-t 95% interval with k − 1 degrees of freedom over the k
    seeds; a = mean_s a_s. Points of one seed share its noise (its reward model, its policy), so
    the pooled interval (`fit_line`, n − 2 degrees of freedom over points) is too narrow when
    seeds differ; with one seed there is nothing to cluster and the pooled fit is returned.
    ``interval_over`` names what the interval is over (``seeds`` or ``points``), ``r2`` is the
    pooled line's and ``n`` counts points."""
    x, y, seeds = (np.asarray(v) for v in (x, y, seeds))
    ok = np.isfinite(x.astype(float)) & np.isfinite(y.astype(float))
    x, y, seeds = x[ok].astype(float), y[ok].astype(float), seeds[ok]
    pooled = fit_line(x, y)
    per = [fit_line(x[seeds == s], y[seeds == s]) for s in np.unique(seeds)]
    per = [f for f in per if math.isfinite(f["slope"])]
    if len(np.unique(seeds)) < 2:
        return {**pooled, "seeds": len(per), "interval_over": "points"}
    k = len(per)
    out = dict(slope=math.nan, slope_se=math.nan, slope_lo=math.nan, slope_hi=math.nan,
               intercept=math.nan, r2=pooled["r2"], n=len(x), seeds=k, interval_over="seeds")  # fmt: skip
    if k == 0:
        return out
    b = np.array([f["slope"] for f in per])
    out.update(slope=float(b.mean()), intercept=float(np.mean([f["intercept"] for f in per])))
    if k >= 2:
        se = float(b.std(ddof=1) / math.sqrt(k))
        h = float(stats.t.ppf(0.975, k - 1) * se)
        out.update(slope_se=se, slope_lo=out["slope"] - h, slope_hi=out["slope"] + h)
    return out


def clopper_pearson(k: int, n: int) -> tuple[float, float, float]:
    """k of n, with the exact (Clopper-Pearson) 95% interval of the proportion."""
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    return k / n, float(ci.low), float(ci.high)
