"""A toy sample-based optimizer kept in a test's own files: for k in `ks`, the mean of the top k of
each prompt's pool samples by the proxy, at the KL of the uniform distribution on k of the N
samples, log(N/k) (exact when no two proxy scores tie)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from rewardlab.measure import normalize
from rewardlab.optimize.curves import CURVE_COLUMNS, SAMPLE, OptimizerResult
from rewardlab.rewards.base import RULE
from rewardlab.specs import Strict

FAMILY = SAMPLE
STAGES = ()


class Config(Strict):
    """Top-k of the pool by each reward."""

    kind: Literal["toy_top_k"] = Field("toy_top_k", description="the toy optimizer")
    ks: list[int] = Field([1, 2, 4], description="the k of each point")


def run(cfg: Config, ctx) -> OptimizerResult:
    s = ctx.scores.sort_values(["prompt_id", "sample_id"])
    P = s.prompt_id.nunique()
    gold_raw = s.gold.to_numpy(float).reshape(P, -1)
    N = gold_raw.shape[1]
    gold = normalize(gold_raw, gold_raw)
    rows = []
    for name, reward in ctx.rewards.items():
        proxy_raw = gold_raw if name == RULE else s[name].to_numpy(float).reshape(P, -1)
        proxy = normalize(proxy_raw, proxy_raw)
        order = np.argsort(-proxy_raw, axis=1, kind="stable")
        for k in cfg.ks:
            top = order[:, :k]
            g = np.take_along_axis(gold, top, 1).mean()
            p = np.take_along_axis(proxy, top, 1).mean()
            rows.append(dict(optimizer="toy_top_k", reward=name, reward_params=reward.params,
                             seed=ctx.seed, step=k, kl=np.log(N / k), sqrt_kl=np.sqrt(np.log(N / k)),
                             proxy=p, gold=g, proxy_raw=np.take_along_axis(proxy_raw, top, 1).mean(),
                             gold_raw=np.take_along_axis(gold_raw, top, 1).mean(), family=SAMPLE))  # fmt: skip
    return OptimizerResult(SAMPLE, pd.DataFrame(rows)[CURVE_COLUMNS])
