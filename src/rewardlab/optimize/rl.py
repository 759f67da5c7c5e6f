"""RL against any reward of the lab with TRL's trainers (GRPO, RLOO), gold tracked all the way.

The trainer optimises the reward it is given; a callback measures, every `measure_every` steps and
independently of what the trainer logs, on held-out prompts with fresh samples:
KL(pi || pi_init) in nats (k1 with its standard error, and k3), the gold score and the proxy score.
Trainer checkpoints are kept at each measurement, so the peak-gold policy can be recovered and a
killed run resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import math
import shutil
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import (
    AutoModelForCausalLM,
    PreTrainedTokenizerBase,
    PrinterCallback,
    ProgressCallback,
    TrainerCallback,
)

from rewardlab.cache import write_atomic
from rewardlab.config import RLConfig
from rewardlab.errors import RewardLabError
from rewardlab.measure import kl_from_samples
from rewardlab.models import load_tokenizer
from rewardlab.policy import never_sampled, sample, token_logprobs
from rewardlab.progress import progress_shown
from rewardlab.seeding import seed_everything
from rewardlab.tasks import Task, checked_gold

CURVE_FILE = "curve.csv"
# transformers deprecates `gradient_checkpointing` in favour of a new name that TRL does not use yet
warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)


class GuardedReward:
    """Wrap a reward function so that a raise, a non-finite value or a hang is never silent.

    mode ``stop``: raise `RewardLabError` naming the reward and the first bad sample.
    mode ``skip``: replace each bad score by the mean of the good ones in the batch (so it carries
    no advantage) and count it in `skipped`; a hang always stops.
    """

    def __init__(self, fn: Callable, name: str, mode: str = "stop", timeout_s: float = 60.0):
        self.fn, self.name, self.mode, self.timeout_s = fn, name, mode, timeout_s
        self.skipped = 0
        self.calls = 0
        self.__name__ = name.replace("/", "_")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reward")

    def _call(self, prompts, completions) -> list:
        future = self._pool.submit(self.fn, list(prompts), list(completions))
        try:
            return list(future.result(timeout=self.timeout_s))
        except FutureTimeout:
            self._pool = ThreadPoolExecutor(max_workers=1)  # the hung thread is abandoned
            raise RewardLabError(
                f"reward {self.name!r} did not return within {self.timeout_s:g} s on a batch of "
                f"{len(prompts)} samples (first prompt {prompts[0]!r}, completion {completions[0]!r})"
            ) from None

    def _bad(self, i: int, what: str, prompts, completions) -> RewardLabError:
        return RewardLabError(
            f"reward {self.name!r} {what} on sample {i} (prompt {prompts[i]!r}, completion "
            f"{completions[i]!r}); set rl.on_reward_error: skip to skip such samples"
        )

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kw) -> list[float]:
        self.calls += 1
        prompts, completions = list(prompts), list(completions)
        try:
            scores = self._call(prompts, completions)
        except RewardLabError:
            raise
        except Exception:
            scores = []  # find which samples raise, one at a time
            for i in range(len(prompts)):
                try:
                    scores.append(self._call(prompts[i : i + 1], completions[i : i + 1])[0])
                except RewardLabError:
                    raise
                except Exception as exc:
                    if self.mode == "stop":
                        raise self._bad(
                            i, f"raised {type(exc).__name__}: {exc}", prompts, completions
                        ) from None
                    scores.append(math.nan)
        vals = np.array([float(s) if s is not None else math.nan for s in scores], dtype=float)
        if len(vals) != len(prompts):
            raise RewardLabError(
                f"reward {self.name!r} returned {len(vals)} scores for {len(prompts)} samples"
            )
        bad = ~np.isfinite(vals)
        if bad.any():
            if self.mode == "stop":
                i = int(np.flatnonzero(bad)[0])
                raise self._bad(
                    i, f"returned {scores[i]!r} (not a finite number)", prompts, completions
                )
            self.skipped += int(bad.sum())
            vals[bad] = vals[~bad].mean() if (~bad).any() else 0.0
        return vals.tolist()


class Measure(TrainerCallback):
    """Every `every` steps (and at step 0): KL, gold and proxy from fresh samples; rows go to
    `curve_path`, written atomically after each measurement."""

    def __init__(
        self,
        cfg: RLConfig,
        task: Task,
        tok,
        init_model,
        reward: Callable,
        prompts,
        curve_path: Path,
        seed: int,
    ):
        self.cfg, self.task, self.tok, self.init_model = cfg, task, tok, init_model
        self.reward, self.prompts, self.curve_path, self.seed = reward, prompts, curve_path, seed
        self.rows = pd.read_csv(curve_path).to_dict("records") if curve_path.is_file() else []

    def measure(self, model, step: int) -> dict:
        model.eval()
        comps, prompts, logp = [], [], []
        for i, p in enumerate(self.prompts):
            gen = torch.Generator().manual_seed(self.seed * 7919 + i)
            c, lp = sample(model, self.tok, p, self.cfg.measure_samples,
                           max_new_tokens=self.task.max_new_tokens, generator=gen)  # fmt: skip
            comps += c
            prompts += [p] * len(c)
            logp.append(lp)
        logp = np.concatenate(logp)
        with torch.no_grad():
            lr, mask = token_logprobs(
                self.init_model, self.tok, prompts, comps, self.task.max_new_tokens
            )
            logp_init = (lr * mask).sum(-1).numpy()
        kl = kl_from_samples(logp, logp_init)
        gold = np.array(checked_gold(self.task, prompts, comps))
        proxy = np.array(self.reward(prompts, comps))
        P = len(self.prompts)
        g_p, x_p = gold.reshape(P, -1).mean(1), proxy.reshape(P, -1).mean(1)  # per prompt
        model.train()
        return dict(
            step=step, kl=kl.k1, kl_se=kl.k1_se, kl_k3=kl.k3, kl_k3_se=kl.k3_se,
            gold_raw=gold.mean(), gold_se=g_p.std(ddof=1) / np.sqrt(P),
            proxy_raw=proxy.mean(), proxy_se=x_p.std(ddof=1) / np.sqrt(P),
            mean_length=float(np.mean([len(c.split()) for c in comps])),
            example=comps[0],
        )  # fmt: skip

    def _record(self, model, step: int) -> None:
        if any(r["step"] == step for r in self.rows):
            return
        self.rows.append(self.measure(model, step))
        write_atomic(self.curve_path, pd.DataFrame(self.rows).to_csv(index=False))

    def on_train_begin(self, args, state, control, model=None, **kw):
        self.rows = [
            r for r in self.rows if r["step"] <= state.global_step
        ]  # resumed: drop the future
        self._record(model, state.global_step)

    def on_step_end(self, args, state, control, model=None, **kw):
        if state.global_step % self.cfg.measure_every == 0 or state.global_step == state.max_steps:
            self._record(model, state.global_step)
            control.should_save = True  # a trainer checkpoint at every measurement
        return control


def last_checkpoint(folder: Path) -> Path | None:
    """The trainer checkpoint with the highest step in `folder`, if any is complete."""
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[1])) if done else None


def train_rl(
    cfg: RLConfig,
    task: Task,
    policy_dir: Path,
    reward: Callable,
    reward_name: str,
    train_prompts: list[str],
    eval_prompts: list[str],
    seed: int,
    work: Path,
    out: Path,
    progress: bool = True,
) -> None:
    """Run GRPO or RLOO on the policy in `policy_dir` against `reward`; keep state in `work`
    (resumable); write the finished artifact to `out`: curve.csv, checkpoints/step-N/ (policy
    weights at each measurement), final/, trainer_log.json, rewards.json (calls, skipped)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    seed_everything(seed)
    show = progress and progress_shown()
    work.mkdir(parents=True, exist_ok=True)
    tok: PreTrainedTokenizerBase = load_tokenizer(policy_dir)
    model = AutoModelForCausalLM.from_pretrained(policy_dir, local_files_only=True)
    init_model = AutoModelForCausalLM.from_pretrained(policy_dir, local_files_only=True).eval()
    guarded = GuardedReward(reward, reward_name, cfg.on_reward_error, cfg.reward_timeout_s)
    Config, Trainer = (
        (GRPOConfig, GRPOTrainer) if cfg.algorithm == "grpo" else (RLOOConfig, RLOOTrainer)
    )
    args = Config(
        output_dir=str(work / "trainer"),
        per_device_train_batch_size=cfg.prompts_per_step * cfg.generations,
        num_generations=cfg.generations,
        max_completion_length=task.max_new_tokens,
        learning_rate=cfg.lr,
        lr_scheduler_type="constant",
        beta=cfg.beta,
        temperature=cfg.temperature,
        max_steps=cfg.steps,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        use_cpu=True,
        save_strategy="no",  # the Measure callback asks for a checkpoint at each measurement
        logging_steps=max(1, cfg.measure_every),
        report_to=[],
        seed=seed,
        disable_tqdm=not show,
        generation_kwargs={"suppress_tokens": never_sampled(tok)},  # the policy never emits these
    )
    dataset = Dataset.from_dict({"prompt": train_prompts})
    measure = Measure(cfg, task, tok, init_model, guarded, eval_prompts, work / CURVE_FILE, seed)
    trainer = Trainer(model=model, reward_funcs=guarded, args=args, train_dataset=dataset,
                      processing_class=tok, callbacks=[measure])  # fmt: skip
    if not show:  # in logs and tests: no per-step dictionaries
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
    ckpt = last_checkpoint(work / "trainer")
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    # the finished artifact
    shutil.copy2(work / CURVE_FILE, out / CURVE_FILE)
    for c in sorted((work / "trainer").glob("checkpoint-*")):
        dst = out / "checkpoints" / f"step-{int(c.name.split('-')[1]):05d}"
        dst.mkdir(parents=True)
        for f in c.iterdir():
            if f.name in (
                "model.safetensors",
                "config.json",
                "generation_config.json",
            ) or f.name.startswith("tokenizer"):
                shutil.copy2(f, dst / f.name)
    trainer.model.save_pretrained(out / "final")
    tok.save_pretrained(out / "final")
    (out / "trainer_log.json").write_text(
        json.dumps(trainer.state.log_history, indent=1, default=str)
    )
    (out / "rewards.json").write_text(
        json.dumps({"reward": reward_name, "calls": guarded.calls, "skipped": guarded.skipped})
    )
