"""Raw curves of every trained optimizer -> ``curves.csv`` rows, ``measurements.csv`` and fits,
normalised by the base policy's pool as best-of-n is (`measure.normalize`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rewardlab.measure import Fit, fit_rl, normalize
from rewardlab.rewards.base import RULE

CURVE_COLUMNS = [
    "optimizer",
    "reward",
    "reward_params",
    "seed",
    "step",
    "kl",
    "sqrt_kl",
    "proxy",
    "gold",
    "proxy_raw",
    "gold_raw",
]


def _scale(ref: np.ndarray) -> float:
    sd = float(np.std(ref))
    return sd if sd > 0 else 1.0


def trained_rows(
    trained: list, pool: pd.DataFrame, params: dict[str, int], seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, Fit]]]:
    """``curves.csv`` rows, the detailed measurements and an RL-form fit per run.

    For a run with raw gold g and proxy p at each step: gold = normalize(g, pool gold) and
    proxy = normalize(p, pool proxy), the pool being the base policy's scored best-of-n pool
    (its column named after the proxy reward; the rule's proxy is gold itself); standard errors
    are divided by the same standard deviations, and so is each prompt's mean gold
    (``gold_by_prompt``, the units of the hacking test, `verdict`); sqrt_kl = sqrt(max(kl, 0)) (k1 can be slightly
    negative by noise near the initial policy). `checkpoint` names the policy measured at each
    step inside the run folder (the base policy at step 0).
    """
    gold_ref = pool["gold"].to_numpy(float)
    rows, details, fits = [], [], {}
    for t in trained:
        c = t.raw.sort_values("step").reset_index(drop=True)
        if t.proxy is None:
            proxy_ref = None
        else:  # the rule's proxy is gold itself
            proxy_ref = gold_ref if t.proxy == RULE else pool[t.proxy].to_numpy(float)
        c["gold"] = normalize(c.gold_raw.to_numpy(float), gold_ref)
        if "gold_by_prompt" in c:  # absent from curves measured before it was recorded
            c["gold_by_prompt"] = [
                " ".join(f"{x:.9g}" for x in normalize(np.array(v.split(), float), gold_ref))
                if isinstance(v, str) else np.nan
                for v in c.gold_by_prompt
            ]  # fmt: skip
        c["gold_se_norm"] = c.gold_se / _scale(gold_ref)
        if proxy_ref is None:
            c["proxy"], c["proxy_se_norm"] = np.nan, np.nan
        else:
            c["proxy"] = normalize(c.proxy_raw.to_numpy(float), proxy_ref)
            c["proxy_se_norm"] = c.proxy_se / _scale(proxy_ref)
        c["sqrt_kl"] = np.sqrt(c.kl.clip(lower=0))
        c.insert(0, "optimizer", t.optimizer)
        c.insert(1, "reward", t.reward)
        c["beta"] = t.beta
        c["checkpoint"] = [
            "stages/policy" if st == 0 else f"stages/{t.label}/checkpoints/step-{st:05d}"
            for st in c.step
        ]
        details.append(c)
        rows.append(c.assign(reward_params=params.get(t.reward, 0), seed=seed)[CURVE_COLUMNS])
        fits.setdefault(t.optimizer, {})[t.reward] = fit_rl(
            c.sqrt_kl.to_numpy(), c.gold.to_numpy(), n_boot=0
        )
    if not rows:
        return pd.DataFrame(columns=CURVE_COLUMNS), pd.DataFrame(), {}
    return pd.concat(rows, ignore_index=True), pd.concat(details, ignore_index=True), fits
