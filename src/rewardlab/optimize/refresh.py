"""Refreshing a learned reward during RL (`rl.Config.refresh_every`): every k steps the current
policy is sampled on prompts of their own split, and the reward is retrained on its data plus
those samples (`Reward.refresh`: new gold-labelled pairs for Bradley-Terry, iterated RLHF; new
labelled samples for a classifier; new negatives for a discriminator, adversarial imitation).

Each refreshed model is a cached stage keyed on the samples' content. ``refresh.json`` in the
RL stage lists, per refresh, the step, the samples drawn, the gold labels that retraining used
(``gold_calls``: of every refresh sample so far, so the last entry's is the refreshes' whole
label cost; 0 for a discriminator) and the stage that holds the model; ``refresh_samples.parquet`` holds every sample with the step
whose policy drew it. A resumed run takes back the reward of its last refresh at or before its
checkpoint (a cache hit), so the reward in use after a restart is the one in use before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from transformers import TrainerCallback

from rewardlab.common.io import write_atomic
from rewardlab.policy import sample_rows
from rewardlab.rewards.base import Reward
from rewardlab.rewards.guard import GuardedReward
from rewardlab.seeding import prompt_uniforms
from rewardlab.tasks import checked_gold

LOG_FILE, SAMPLES_FILE = "refresh.json", "refresh_samples.parquet"


def draw(model, tok, task, prompts: list[str], samples: int, limit: int, temperature: float,
         seed: int, step: int) -> pd.DataFrame:  # fmt: skip
    """`samples` completions of each prompt from `model`, the stream (seed, "refresh", step, i)
    for prompt i, with their gold: columns prompt, completion, gold, step."""
    model.eval()
    u = prompt_uniforms(seed, "refresh", step, prompts=len(prompts), samples=samples, width=limit)
    rep = [p for p in prompts for _ in range(samples)]
    comps, _ = sample_rows(model, tok, rep, u, max_new_tokens=limit, temperature=temperature)
    gold = checked_gold(task, rep, comps)
    return pd.DataFrame({"prompt": rep, "completion": comps, "gold": gold, "step": step})


class Refresh(TrainerCallback):
    """Every `every` steps before the last: `draw` from the trained policy, retrain the reward
    on all samples drawn so far and hand the trainer (and the measurement) the new one."""

    def __init__(self, every: int, reward: Reward, guarded: GuardedReward, work: Path, **draw_kw):
        self.every, self.reward, self.guarded, self.kw = every, reward, guarded, draw_kw
        self.log_path, self.data_path = work / LOG_FILE, work / SAMPLES_FILE
        self.entries: list[dict] = []
        self.data = pd.DataFrame(columns=["prompt", "completion", "gold", "step"])

    def _save(self) -> None:
        self.data.to_parquet(self.data_path.with_suffix(".tmp"))
        self.data_path.with_suffix(".tmp").replace(self.data_path)
        write_atomic(self.log_path, json.dumps(self.entries, indent=1))

    def _retrain(self) -> dict:
        fn, res, gold_calls = self.reward.refresh(self.data.reset_index(drop=True))
        self.guarded.fn = fn
        return dict(stage=res.hash, path=str(res.path), gold_calls=gold_calls)

    def on_train_begin(self, args, state, control, **kw):
        if not self.log_path.is_file():
            return
        step = state.global_step  # resumed: keep what happened up to the checkpoint
        self.entries = [e for e in json.loads(self.log_path.read_text()) if e["step"] <= step]
        data = pd.read_parquet(self.data_path)
        self.data = data[data.step <= step]
        if self.entries:
            self._retrain()  # the last refresh's model, from the cache

    def on_step_end(self, args, state, control, model=None, **kw):
        step = state.global_step
        if step % self.every or step >= state.max_steps:
            return control
        new = draw(model, step=step, **self.kw)
        model.train()
        self.data = pd.concat([self.data, new], ignore_index=True)
        entry = dict(step=step, samples=len(new), **self._retrain())
        self.entries.append(entry)
        self._save()
        return control
