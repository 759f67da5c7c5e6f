"""The base policy's samples: a pool of completions per prompt, gold-scored. The held-out pool is
what best-of-n picks from and what every curve is normalised by; another pool is paired for
preferences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from rewardlab.cache import StageResult
from rewardlab.models import build_causal_lm, load_tokenizer
from rewardlab.policy import sample_rows
from rewardlab.seeding import prompt_uniforms, seed_everything
from rewardlab.specs import ModelSpec, SamplingConfig, Strict
from rewardlab.tasks import Task, TaskConfig, checked_gold, split_prompts


class PoolConfig(Strict):
    """The base policy's held-out pool: best-of-n picks from it, and every curve is normalised
    by it (0 = its mean, 1 = its standard deviation, per reward)."""

    prompts: int = Field(16, ge=1, description="held-out prompts of the pool")
    n: int = Field(1024, ge=2, description="completions per prompt in the pool")


def max_tokens(sampling: SamplingConfig, task: Task) -> int:
    """The completion bound of every sampler of the study: the config's, else the task's."""
    return sampling.max_new_tokens or task.max_new_tokens


def stage_pool(
    sampling: SamplingConfig,
    task_cfg: TaskConfig,
    policy: StageResult,
    split: str,
    n_prompts: int,
    n_samples: int,
    seed: int,
    out: Path,
) -> None:
    """Sample `n_samples` completions for each of `n_prompts` prompts of `split`; score gold.

    Writes ``pool.parquet``: prompt_id, prompt, sample_id, completion, logp (sum of sampled
    token log-probabilities), gold. The uniforms of prompt i's samples come from the stream
    (seed, "pool", split, i), one row per sample, and all rows are sampled together
    (`policy.sample_rows`, `sampling.batch_size` rows a pass), so a pool does not depend on the
    batch size.
    """
    task = task_cfg.load()
    seed_everything(seed, "pool", split)
    tok = load_tokenizer(policy.path)
    model = build_causal_lm(ModelSpec(path=str(policy.path)), tok)
    prompts = split_prompts(task, split, n_prompts, seed)
    limit = max_tokens(sampling, task)
    u = prompt_uniforms(seed, "pool", split, prompts=len(prompts), samples=n_samples, width=limit)
    rows = [p for p in prompts for _ in range(n_samples)]
    comps, logp = sample_rows(model, tok, rows, u, max_new_tokens=limit, desc=f"sample {split} pool",
                              temperature=sampling.temperature, batch_size=sampling.batch_size)  # fmt: skip
    df = pd.DataFrame(dict(prompt_id=np.repeat(np.arange(len(prompts)), n_samples), prompt=rows,
                           sample_id=np.tile(np.arange(n_samples), len(prompts)),
                           completion=comps, logp=logp))  # fmt: skip
    df["gold"] = checked_gold(task, df["prompt"].tolist(), df["completion"].tolist())
    df.to_parquet(out / "pool.parquet", index=False)
