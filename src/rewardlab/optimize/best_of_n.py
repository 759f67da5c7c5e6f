"""Best-of-n (kind `bon`, a sample-based optimizer) against rewards of a study, from one scored
pool of the base policy: curves, fits, examples.

`curves.csv` layout (one row per optimizer, reward, seed, step): optimizer, reward,
reward_params, seed, step (= n), kl (nats), sqrt_kl, proxy, gold (normalised), proxy_raw,
gold_raw. Normalisation as in Gao et al. 2022: each reward minus its mean under the base policy
(the pool), divided by its standard deviation there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from rewardlab.errors import RewardLabError
from rewardlab.measure import bon_curve, default_ns, fit_bon, normalize
from rewardlab.optimize.curves import CURVE_COLUMNS, SAMPLE, OptimizerResult
from rewardlab.rewards.base import RULE
from rewardlab.specs import Strict

if TYPE_CHECKING:  # a type only: the context is built by the study
    from rewardlab.context import StudyContext

FAMILY = SAMPLE
STAGES = ()  # the cache stages it builds (`rewardlab run --rebuild` names them)


class Config(Strict):
    """Best-of-n for every n up to the pool's size, by the unbiased estimator over the pool."""

    kind: Literal["bon"] = Field("bon", description="best-of-n from the study's pool")
    rewards: list[str] | None = Field(
        None, description="rewards to pick by (default: every reward of the study)"
    )
    n_boot: int = Field(1000, ge=0, description="bootstrap resamples of prompts for fit intervals")


def _matrix(scores: pd.DataFrame, column: str) -> np.ndarray:
    """A score column as (prompts, N), rows ordered by prompt_id then sample_id."""
    s = scores.sort_values(["prompt_id", "sample_id"])
    P = s["prompt_id"].nunique()
    return s[column].to_numpy(float).reshape(P, -1)


def run_best_of_n(
    scores: pd.DataFrame,
    rewards: dict[str, int],
    *,
    seed: int = 0,
    ns: np.ndarray | None = None,
    n_boot: int = 1000,
    n_examples: int = 3,
) -> OptimizerResult:
    """Best-of-n curves of every reward in `rewards` (column name -> parameter count), plus the
    task's rule (``gold`` as its own proxy, parameters 0).

    Args:
        scores: the scored pool: prompt_id, sample_id, prompt, completion, gold, and one column
            per reward.
    """
    gold_raw = _matrix(scores, "gold")
    P, N = gold_raw.shape
    ns = default_ns(N) if ns is None else np.asarray(ns)
    gold = normalize(gold_raw, gold_raw)
    rows, per_prompt, fits, examples = [], [], {}, []
    prompts = (
        scores.sort_values(["prompt_id", "sample_id"])["prompt"].to_numpy().reshape(P, N)[:, 0]
    )
    comps = scores.sort_values(["prompt_id", "sample_id"])["completion"].to_numpy().reshape(P, N)
    for name, params in {RULE: 0, **rewards}.items():
        proxy_raw = gold_raw if name == RULE else _matrix(scores, name)
        proxy = normalize(proxy_raw, proxy_raw)
        bp = bon_curve(proxy, gold, ns, by_prompt=True)
        c = bp.groupby("n", sort=True)[["kl", "proxy", "gold"]].mean().reset_index()
        # normalisation is affine, and best-of-n weights sum to 1: raw curves follow from c
        raw = dict(
            proxy=_unnormalize(c["proxy"], proxy_raw), gold=_unnormalize(c["gold"], gold_raw)
        )
        bp.insert(0, "optimizer", "bon")
        bp.insert(1, "reward", name)
        bp["sqrt_kl"] = np.sqrt(bp["kl"])
        per_prompt.append(bp)
        rows.append(
            pd.DataFrame(
                dict(
                    optimizer="bon",
                    reward=name,
                    reward_params=params,
                    seed=seed,
                    step=c["n"],
                    kl=c["kl"],
                    sqrt_kl=np.sqrt(c["kl"]),
                    proxy=c["proxy"],
                    gold=c["gold"],
                    proxy_raw=raw["proxy"],
                    gold_raw=raw["gold"],
                    family=SAMPLE,
                )
            )
        )
        G = bp.pivot(index="prompt", columns="n", values="gold").to_numpy()  # (P, K)
        fits[name] = fit_bon(np.sqrt(c["kl"].to_numpy()), G, n_boot=n_boot, seed=seed)
        n_peak = int(c["n"].iloc[int(np.argmax(c["gold"].to_numpy()))])
        examples += _examples(name, prompts, comps, proxy_raw, gold_raw, n_peak, N, n_examples)
    return OptimizerResult(
        SAMPLE,
        curves=pd.concat(rows, ignore_index=True)[CURVE_COLUMNS],
        fits={"bon": fits},
        by_prompt=pd.concat(per_prompt, ignore_index=True),
        examples=pd.DataFrame(examples),
    )


def run(cfg: Config, ctx: StudyContext) -> OptimizerResult:
    """Best-of-n by every reward of `cfg.rewards` (default: all) from the scored pool."""
    names = (
        cfg.rewards if cfg.rewards is not None else [n for n, r in ctx.rewards.items() if r.pool]
    )
    off_pool = [n for n in names if not ctx.rewards[n].pool]
    if off_pool:
        raise RewardLabError(
            f"bon: {off_pool} cannot pick from the pool (a reward people give is asked for by a "
            "trainer only); leave them out of bon's rewards"
        )
    rewards = {n: ctx.rewards[n].params for n in names if n != RULE}
    return run_best_of_n(ctx.scores, rewards, seed=ctx.seed, n_boot=cfg.n_boot)


def _unnormalize(z: pd.Series, ref: np.ndarray) -> pd.Series:
    """The inverse of `normalize(., ref)`."""
    sd = ref.std()
    return z * (sd if sd > 0 else 1.0) + ref.mean()


def _examples(name, prompts, comps, proxy_raw, gold_raw, n_peak, N, k) -> list[dict]:
    """For the first `k` prompts: the completion best-of-n picks on average at the gold peak
    (proxy rank ~ N / (n_peak + 1) from the top, the expected rank of the best of n) and at n = N
    (the proxy's favourite)."""
    out = []
    for i in range(min(k, len(prompts))):
        order = np.argsort(-proxy_raw[i], kind="stable")
        for where, n in (("peak", n_peak), ("max n", N)):
            rank = max(1, round(N / (n + 1))) if n < N else 1
            j = order[rank - 1]
            out.append(
                dict(
                    reward=name,
                    prompt=prompts[i],
                    where=where,
                    n=n,
                    rank=rank,
                    completion=comps[i, j],
                    proxy_raw=float(proxy_raw[i, j]),
                    gold_raw=float(gold_raw[i, j]),
                )
            )
    return out
