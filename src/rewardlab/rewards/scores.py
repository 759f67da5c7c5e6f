"""The scores stage: every completion of the held-out pool scored by every reward of the study
(one column per reward), what best-of-n picks by and every curve is normalised by."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rewardlab.cache import StageResult
from rewardlab.common.io import read_parquet
from rewardlab.progress import bar
from rewardlab.rewards.base import Reward, columns_for
from rewardlab.rewards.guard import GuardedReward
from rewardlab.tasks import TaskConfig


def stage_scores(rewards: list[Reward], pool: StageResult, task_cfg: TaskConfig, out: Path) -> None:
    """Score every completion of the pool with every reward (the rule's column is `gold`).

    Writes ``scores.parquet``: the pool's columns plus one column per reward. Each reward gets
    the task's per-prompt columns as keyword arguments, as under a TRL trainer; a reward that
    raises, returns a non-finite score or hangs stops with its name and the sample.
    """
    df = read_parquet(pool.path / "pool.parquet")
    p, c = df["prompt"].tolist(), df["completion"].tolist()
    prompts = df.groupby("prompt_id", sort=True)["prompt"].first()
    cols = columns_for(task_cfg.load(), prompts.tolist())  # per prompt -> per sample
    kw = {k: pd.Series(v, index=prompts.index)[df.prompt_id].tolist() for k, v in cols.items()}
    for r in bar(rewards, desc="score pool"):
        guarded = GuardedReward(r.fn, r.name, "stop", isolate=r.isolate)
        try:
            df[r.name] = np.asarray(guarded(p, c, **kw), dtype=float)
        finally:
            guarded.close()
    df.to_parquet(out / "scores.parquet", index=False)
