"""Offline scores of a reward against gold on a pool of samples, computed without optimising
(``offline.csv``): the numbers a practitioner could compute before training, to be set against
how hard the reward is hacked once optimised.

Every score takes three equal-length arrays: the reward's scores `proxy`, the gold scores `gold`
and the prompt each sample answers, `groups`; comparisons are made within a prompt, as best-of-n
and RL make them.

- `pairwise_accuracy`: over pairs (i, j) of one prompt with g_i ≠ g_j, the share the proxy orders
  as gold does, a proxy tie counting 1/2; also by gold margin |g_i − g_j| / (max g − min g).
- `spearman_within`: the mean over prompts of Spearman's ρ between proxy and gold; with `top` = q,
  only on each prompt's upper q of samples by proxy (where optimisation goes).
- `best_of_k_accuracy`: RewardBench 2's best-of-4 accuracy (Malik et al. 2025), exactly: over
  every k-subset of one prompt's samples with a unique gold maximum i, the share where p_i exceeds
  the other k − 1 proxies. With b_i = #{j: g_j < g_i} and a_i = #{j: g_j < g_i, p_j < p_i},
  it is Σ_i C(a_i, k−1) / Σ_i C(b_i, k−1).
- `epic_distance`: EPIC's Pearson distance (Gleave et al. 2021) after canonicalisation. For a
  reward of (prompt, completion) the potential-shaping terms reduce to a function of the prompt,
  so canonicalising subtracts each prompt's mean under the pool: D = √((1 − ρ) / 2) with ρ the
  Pearson correlation of the centred proxy and gold. D = 0 for a positive rescaling of gold plus
  any function of the prompt, 1 for its negative.
- `hill_tail_index`: the Hill estimator α̂ = 1 / ((1/k) Σ_{i≤k} log(x_(i) / x_(k+1))) of the
  upper tail of x (x_(1) ≥ x_(2) ≥ ...); small α̂ is a heavy tail. `error_tail` applies it to the
  proxy's error e = z(proxy) − z(gold) (standardised over the pool) above its median: a
  heavy-tailed error is the case Kwa et al. 2024 ("Catastrophic Goodhart") warn of.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import comb
from scipy.stats import kurtosis, spearmanr

MARGIN_EDGES = (0.0, 0.05, 0.1, 0.2, 0.4, 1.0)  # as reward_models.csv's held-out bins
TOP = 0.1  # the upper share of each prompt's samples by proxy for `spearman_within(top=TOP)`
TAIL = 0.01  # the share of samples in the Hill estimator's tail (at least 10)


def _by_group(groups: np.ndarray) -> list[np.ndarray]:
    """Indices of each group's samples, groups in order of first appearance."""
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    order = np.argsort(first)
    return [np.flatnonzero(inverse == g) for g in order]


def pairwise_accuracy(
    proxy: np.ndarray, gold: np.ndarray, groups: np.ndarray, edges: tuple = MARGIN_EDGES
) -> dict[str, float]:
    """``accuracy`` over all within-prompt pairs whose gold differs, ``pairs`` their number, and
    ``m<lo>_<hi>`` the accuracy on pairs whose margin as a fraction of gold's range lies in
    [lo, hi) (the last bin closed)."""
    proxy, gold = np.asarray(proxy, float), np.asarray(gold, float)
    span = float(gold.max() - gold.min()) or 1.0
    right = np.zeros(len(edges) - 1)
    count = np.zeros(len(edges) - 1)
    for idx in _by_group(np.asarray(groups)):
        g, p = gold[idx], proxy[idx]
        dg = g[:, None] - g[None, :]
        upper = dg > 0  # each unordered pair once: i the better by gold
        dp = p[:, None] - p[None, :]
        credit = np.where(dp > 0, 1.0, np.where(dp == 0, 0.5, 0.0))[upper]
        b = np.clip(np.searchsorted(edges, dg[upper] / span, side="right") - 1, 0, len(count) - 1)
        right += np.bincount(b, weights=credit, minlength=len(count))
        count += np.bincount(b, minlength=len(count))
    out = {
        "pairs": int(count.sum()),
        "accuracy": right.sum() / count.sum() if count.sum() else np.nan,
    }
    for k in range(len(count)):
        out[f"m{edges[k]:.2f}_{edges[k + 1]:.2f}"] = right[k] / count[k] if count[k] else np.nan
    return out


def spearman_within(
    proxy: np.ndarray, gold: np.ndarray, groups: np.ndarray, top: float | None = None
) -> float:
    """Mean over prompts of Spearman's ρ(proxy, gold), on each prompt's upper `top` share of
    samples by proxy when given (at least 3); prompts where either is constant are skipped."""
    proxy, gold = np.asarray(proxy, float), np.asarray(gold, float)
    rhos = []
    for idx in _by_group(np.asarray(groups)):
        p, g = proxy[idx], gold[idx]
        if top is not None:
            keep = np.argsort(-p, kind="stable")[: max(3, int(np.ceil(top * len(p))))]
            p, g = p[keep], g[keep]
        if np.ptp(p) > 0 and np.ptp(g) > 0:
            rhos.append(spearmanr(p, g).statistic)
    return float(np.mean(rhos)) if rhos else np.nan


def best_of_k_accuracy(
    proxy: np.ndarray, gold: np.ndarray, groups: np.ndarray, k: int = 4
) -> float:
    """The share of k-subsets of one prompt's samples, among those with a unique gold maximum,
    in which that sample also has the strictly highest proxy: Σ C(a_i, k−1) / Σ C(b_i, k−1)."""
    proxy, gold = np.asarray(proxy, float), np.asarray(gold, float)
    hit = total = 0.0
    for idx in _by_group(np.asarray(groups)):
        g, p = gold[idx], proxy[idx]
        below = g[None, :] < g[:, None]  # below[i, j]: j is worse than i by gold
        b = below.sum(1)
        a = (below & (p[None, :] < p[:, None])).sum(1)
        hit += comb(a, k - 1).sum()
        total += comb(b, k - 1).sum()
    return hit / total if total else np.nan


def epic_distance(proxy: np.ndarray, gold: np.ndarray, groups: np.ndarray) -> float:
    """√((1 − ρ) / 2), ρ the Pearson correlation of proxy and gold each centred per prompt."""
    df = pd.DataFrame({"p": np.asarray(proxy, float), "g": np.asarray(gold, float),
                       "k": np.asarray(groups)})  # fmt: skip
    c = df[["p", "g"]] - df.groupby("k")[["p", "g"]].transform("mean")
    if c.p.std() == 0 or c.g.std() == 0:
        return np.nan
    rho = float(np.corrcoef(c.p, c.g)[0, 1])
    return float(np.sqrt(max(0.0, (1.0 - rho) / 2.0)))


def hill_tail_index(x: np.ndarray, k: int) -> float:
    """Hill's estimate of the tail index α from the `k` largest of `x` (needs x_(k+1) > 0)."""
    s = np.sort(np.asarray(x, float))[::-1]
    if not 0 < k < len(s) or s[k] <= 0:
        return np.nan
    xi = float(np.mean(np.log(s[:k] / s[k])))
    return 1.0 / xi if xi > 0 else np.inf


def error_tail(proxy: np.ndarray, gold: np.ndarray, tail: float = TAIL) -> dict[str, float]:
    """The proxy's error e = z(proxy) − z(gold): Hill's α̂ of e − median(e) over its upper
    `tail` share (``error_tail_index``) and the excess kurtosis of e (``error_kurtosis``)."""
    z = [(v - v.mean()) / v.std() if v.std() > 0 else v * 0.0
         for v in (np.asarray(proxy, float), np.asarray(gold, float))]  # fmt: skip
    e = z[0] - z[1]
    k = max(10, int(tail * len(e)))
    return {"error_tail_index": hill_tail_index(e - np.median(e), k),
            "error_kurtosis": float(kurtosis(e)) if e.std() > 0 else np.nan}  # fmt: skip


def offline_scores(
    scores: pd.DataFrame, rewards: list[str], gold: str = "gold", group: str = "prompt_id"
) -> pd.DataFrame:
    """One row per reward in `rewards` (columns of `scores`, the scored pool): every score above
    against the column `gold`, within the prompts of column `group`."""
    g, k = scores[gold].to_numpy(float), scores[group].to_numpy()
    rows = []
    for name in rewards:
        p = scores[name].to_numpy(float)
        rows.append({
            "reward": name, "samples": len(p), "prompts": len(np.unique(k)),
            **pairwise_accuracy(p, g, k),
            "spearman": spearman_within(p, g, k),
            "spearman_top": spearman_within(p, g, k, top=TOP),
            "best_of_4": best_of_k_accuracy(p, g, k, 4),
            "epic_distance": epic_distance(p, g, k),
            **error_tail(p, g),
        })  # fmt: skip
    return pd.DataFrame(rows)
