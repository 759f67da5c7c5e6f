"""Measurement: best-of-n KL, the unbiased best-of-n estimator, Gao et al.'s functional forms.

Public API researchers call on their own data: `bon_kl`, `bon_kl_ties`, `bon_curve`, `fit_bon`,
`fit_rl`, `normalize`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy.special import gammaln, xlogy


def bon_kl(n: int | np.ndarray) -> float | np.ndarray:
    """KL(best-of-n || base) = log n - (n - 1) / n, in nats.

    Stiennon et al. 2020 (arXiv 2009.01325, appendix G.3); Gao et al. 2022, sec. 2.2. It is exact
    when the proxy has no ties and every completion is distinct; otherwise it is an upper bound
    (Beirami et al. 2024, arXiv 2401.01879), so duplicated completions make the true KL smaller.
    """
    n = np.asarray(n, dtype=float)
    if np.any(n < 1):
        raise ValueError("n must be >= 1")
    out = np.log(n) - (n - 1) / n
    return float(out) if out.ndim == 0 else out


def bon_kl_ties(proxy: np.ndarray, ns: np.ndarray | list[int]) -> np.ndarray:
    """Exact KL(best-of-n || base) per prompt, in nats, when the proxy ties: shape (prompts, len(ns)).

    Best-of-n picks the highest proxy of n draws, ties broken uniformly at random. Let the N
    pool samples of a prompt stand for the base policy. A value that k >= 2 samples share is an
    atom of mass p = k/N with CDF F_lo = (samples below)/N, F_hi = F_lo + p: best-of-n gives it
    mass F_hi^n - F_lo^n, spread over its samples in proportion to their base mass, so its term of
    the KL is A = (F_hi^n - F_lo^n) log((F_hi^n - F_lo^n) / p) (Beirami et al. 2024, arXiv
    2401.01879, Lemma 1). A value no other sample shares is treated as continuous: its density
    ratio is n u^(n-1) over its CDF interval, whose term is
        C = log n (F_hi^n - F_lo^n) + (n-1) [F_hi^n log F_hi - F_lo^n log F_lo - (F_hi^n - F_lo^n)/n].
    The C of all intervals of [0, 1] sum to log n - (n-1)/n = `bon_kl(n)`, so
        KL = bon_kl(n) + sum over atoms (A - C),
    which is `bon_kl(n)` exactly when no two samples tie, and smaller when some do (repeated
    completions tie in every reward). A row without ties gets `bon_kl(ns)` itself.
    """
    proxy = np.atleast_2d(np.asarray(proxy, float))
    ns = np.asarray(ns, dtype=float)
    P, N = proxy.shape
    out = np.tile(bon_kl(ns), (P, 1))
    for row in range(P):
        _, counts = np.unique(proxy[row], return_counts=True)
        if (counts == 1).all():
            continue
        hi = np.cumsum(counts) / N
        lo = hi - counts / N
        atom = counts > 1
        lo, hi, p = lo[atom][:, None], hi[atom][:, None], (counts[atom] / N)[:, None]
        n = ns[None, :]
        fh, fl = hi**n, lo**n  # (atoms, len(ns))
        mass = fh - fl
        a = xlogy(mass, mass / p)
        c = np.log(n) * mass + (n - 1) * (xlogy(fh, hi) - xlogy(fl, lo) - mass / n)
        out[row] += (a - c).sum(0)
    return np.maximum(out, 0.0)


def bon_weights(N: int, n: int) -> np.ndarray:
    """w_i = C(i-1, n-1) / C(N, n), i = 1..N: the probability that the i-th smallest of N
    samples is the largest of a uniformly drawn subset of size n. Computed in log space."""
    if not 1 <= n <= N:
        raise ValueError(f"need 1 <= n <= N, got n={n}, N={N}")
    i = np.arange(1, N + 1, dtype=float)
    w = np.zeros(N)
    k = i >= n
    log_c = gammaln(i[k]) - gammaln(n) - gammaln(i[k] - n + 1)  # log C(i-1, n-1)
    log_total = gammaln(N + 1) - gammaln(n + 1) - gammaln(N - n + 1)  # log C(N, n)
    w[k] = np.exp(log_c - log_total)
    return w


def default_ns(N: int, points: int = 64) -> np.ndarray:
    """A geometric grid of n from 1 to N (unique integers, N included)."""
    return np.unique(np.round(np.geomspace(1, N, points)).astype(int))


def _sorted_by_proxy(proxy: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by proxy (ascending); within tied proxy values, replace `values` by their
    group mean, which is exact for best-of-n with ties broken uniformly at random."""
    order = np.argsort(proxy, axis=1, kind="stable")
    p = np.take_along_axis(proxy, order, 1)
    v = np.take_along_axis(values, order, 1).astype(float)
    for row in range(p.shape[0]):
        _, start, counts = np.unique(p[row], return_index=True, return_counts=True)
        for s, c in zip(start[counts > 1], counts[counts > 1], strict=True):
            v[row, s : s + c] = v[row, s : s + c].mean()
    return p, v


def bon_curve(
    proxy: np.ndarray,
    gold: np.ndarray,
    ns: np.ndarray | list[int] | None = None,
    *,
    by_prompt: bool = False,
) -> pd.DataFrame:
    """The unbiased best-of-n estimate of proxy and gold for every n in `ns`.

    With the N samples of a prompt sorted by proxy, S_1 <= ... <= S_N (Gao et al. 2022, app. I;
    Nakano et al. 2021):
        R_n = sum_{i=n..N} C(i-1, n-1) / C(N, n) * R(S_i)
    the exact mean, over all C(N, n) subsets of size n, of the reward R of the subset's
    highest-proxy sample; R is the gold (or the proxy) score. Ties in proxy are broken at random
    (the gold of tied samples is averaged). One pool serves every n and every reward model.

    Args:
        proxy, gold: shape (N,) for one prompt, or (prompts, N).
        ns: the n to evaluate (default: a geometric grid from 1 to N).
        by_prompt: one row per (prompt, n) instead of the mean over prompts.

    Returns:
        columns ``n, kl, proxy, gold`` (and ``prompt`` first when `by_prompt`): kl is the exact KL
        of best-of-n under the proxy's ties (`bon_kl_ties`; `bon_kl(n)` when no two samples tie),
        per prompt or its mean over prompts.
    """
    proxy, gold = np.atleast_2d(np.asarray(proxy, float)), np.atleast_2d(np.asarray(gold, float))
    if proxy.shape != gold.shape:
        raise ValueError(f"proxy {proxy.shape} and gold {gold.shape} differ in shape")
    if not (np.isfinite(proxy).all() and np.isfinite(gold).all()):
        raise ValueError("proxy and gold must be finite")
    P, N = proxy.shape
    ns = default_ns(N) if ns is None else np.asarray(ns, dtype=int)
    W = np.stack([bon_weights(N, int(n)) for n in ns])  # (len(ns), N)
    p_sorted, g_sorted = _sorted_by_proxy(proxy, gold)
    rp = p_sorted @ W.T  # (P, len(ns))
    rg = g_sorted @ W.T
    kl = bon_kl_ties(proxy, ns)  # (P, len(ns))
    if by_prompt:
        return pd.DataFrame(
            dict(
                prompt=np.repeat(np.arange(P), len(ns)),
                n=np.tile(ns, P),
                kl=kl.ravel(),
                proxy=rp.ravel(),
                gold=rg.ravel(),
            )
        )
    kl = kl[0] if (kl == kl[0]).all() else kl.mean(0)  # no ties anywhere: bon_kl(ns) itself
    return pd.DataFrame(dict(n=ns, kl=kl, proxy=rp.mean(0), gold=rg.mean(0)))


def normalize(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(x - mean(ref)) / std(ref): 0 is the base policy's mean, 1 its standard deviation
    (Gao et al. 2022, sec. 2.2 normalise every reward so the initial policy scores 0)."""
    ref = np.asarray(ref, float)
    sd = ref.std()
    return (np.asarray(x, float) - ref.mean()) / (sd if sd > 0 else 1.0)


# ---------------------------------------------------------------- functional-form fits


@dataclass
class Fit:
    """A fitted overoptimization curve r(d), d = sqrt(KL).

    form ``bon``: r = d (alpha - beta d), peak d* = alpha / (2 beta), r* = alpha^2 / (4 beta).
    form ``rl``:  r = d (alpha - beta log d), peak d* = exp(alpha / beta - 1), r* = beta d*.
    With beta <= 0 the curve has no peak: d* = r* = inf. `ci` holds 95% bootstrap intervals over
    prompts (percentile) for alpha, beta, d_star and r_star when per-prompt curves were given.
    """

    form: str
    alpha: float
    beta: float
    d_star: float
    r_star: float
    rmse: float
    n_points: int
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    def predict(self, d: np.ndarray) -> np.ndarray:
        return _basis(self.form, np.asarray(d, float)) @ np.array([self.alpha, self.beta])

    def to_dict(self) -> dict:
        out = asdict(self)
        out["ci"] = {k: list(v) for k, v in self.ci.items()}
        return out


def _basis(form: str, d: np.ndarray) -> np.ndarray:
    """Columns multiplying (alpha, beta): bon [d, -d^2]; rl [d, -d log d] (0 at d = 0)."""
    if form == "bon":
        return np.stack([d, -(d**2)], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        dlogd = np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)
    return np.stack([d, -dlogd], axis=-1)


def _peak(form: str, alpha: float, beta: float) -> tuple[float, float]:
    if beta <= 0:
        return math.inf, math.inf
    if form == "bon":
        return alpha / (2 * beta), alpha**2 / (4 * beta)
    d = math.exp(min(alpha / beta - 1, 700.0))
    return d, beta * d


def _lstsq(form: str, d: np.ndarray, r: np.ndarray) -> tuple[float, float, float]:
    X = _basis(form, d)
    (alpha, beta), *_ = np.linalg.lstsq(X, r, rcond=None)
    rmse = float(np.sqrt(np.mean((X @ np.array([alpha, beta]) - r) ** 2)))
    return float(alpha), float(beta), rmse


def _fit(form: str, d, r, n_boot: int, seed: int) -> Fit:
    d = np.asarray(d, float)
    r = np.asarray(r, float)
    if d.ndim != 1 or r.shape[-1] != d.shape[0]:
        raise ValueError(f"d must be (K,) and r (K,) or (prompts, K); got {d.shape}, {r.shape}")
    if d.shape[0] < 2:
        raise ValueError("need at least two points to fit two coefficients")
    if np.any(d < 0):
        raise ValueError("d = sqrt(KL) must be >= 0")
    mean_r = r if r.ndim == 1 else r.mean(0)
    alpha, beta, rmse = _lstsq(form, d, mean_r)
    fit = Fit(form, alpha, beta, *_peak(form, alpha, beta), rmse=rmse, n_points=len(d))
    if r.ndim == 2 and r.shape[0] > 1 and n_boot > 0:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(n_boot):
            rb = r[rng.integers(0, r.shape[0], r.shape[0])].mean(0)
            a, b, _ = _lstsq(form, d, rb)
            draws.append((a, b, *_peak(form, a, b)))
        draws = np.array(draws)
        for j, name in enumerate(["alpha", "beta", "d_star", "r_star"]):
            # order statistics, not interpolation: a resample with no peak has d* = inf
            lo = np.quantile(draws[:, j], 0.025, method="lower")
            hi = np.quantile(draws[:, j], 0.975, method="higher")
            fit.ci[name] = (float(lo), float(hi))
    return fit


def fit_bon(d, r, *, n_boot: int = 1000, seed: int = 0) -> Fit:
    """Least-squares fit of Gao et al. 2022 eq. (1), best-of-n: r = d (alpha - beta d).

    Args:
        d: sqrt(KL) per point, shape (K,).
        r: reward per point, shape (K,), or per-prompt curves (prompts, K): the fit is to their
            mean and the prompts are resampled `n_boot` times for intervals.
    """
    return _fit("bon", d, r, n_boot, seed)


def fit_rl(d, r, *, n_boot: int = 1000, seed: int = 0) -> Fit:
    """Least-squares fit of Gao et al. 2022 eq. (2), RL: r = d (alpha - beta log d).

    Arguments as in `fit_bon`.
    """
    return _fit("rl", d, r, n_boot, seed)


# ---------------------------------------------------------------- KL from samples


@dataclass
class KLEstimate:
    """Monte-Carlo estimates of KL(pi || pi_ref) in nats from samples y ~ pi.

    With log r = log pi_ref(y) - log pi(y) per sampled sequence (Schulman 2020, "Approximating KL
    divergence", http://joschu.net/blog/kl-approx.html):
        k1 = mean(-log r)               unbiased, can be negative, high variance
        k3 = mean((r - 1) - log r)      unbiased, never negative, lower variance when pi ~ pi_ref
    `k1_se` and `k3_se` are standard errors over the n samples.
    """

    k1: float
    k1_se: float
    k3: float
    k3_se: float
    n: int


def kl_from_samples(logp: np.ndarray, logp_ref: np.ndarray) -> KLEstimate:
    """KL(pi || pi_ref) from sequence log-probabilities of samples drawn from pi.

    Args:
        logp: log pi(y_i), sum over the tokens of each sampled sequence, shape (n,).
        logp_ref: log pi_ref(y_i) of the same sequences, shape (n,).
    """
    logp, logp_ref = np.asarray(logp, float), np.asarray(logp_ref, float)
    if logp.shape != logp_ref.shape or logp.ndim != 1 or len(logp) < 2:
        raise ValueError("logp and logp_ref must be 1-d arrays of the same length >= 2")
    log_r = logp_ref - logp
    k1 = -log_r
    k3 = np.expm1(log_r) - log_r
    n = len(logp)
    return KLEstimate(
        k1=float(k1.mean()),
        k1_se=float(k1.std(ddof=1) / np.sqrt(n)),
        k3=float(k3.mean()),
        k3_se=float(k3.std(ddof=1) / np.sqrt(n)),
        n=n,
    )
