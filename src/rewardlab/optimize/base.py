"""The optimizer contract, and what the trained optimizers share around TRL's trainers.

An optimizer is one module under `optimize/` with ``Config`` (a `Strict` model whose ``kind`` is
a `Literal`), ``FAMILY`` and ``run(cfg, ctx)``. A ``"sample"`` optimizer picks among the base
policy's samples in ``ctx.scores`` and returns its curves (`best_of_n.BonResult`); a
``"trained"`` one updates the policy and returns ``list[Trained]``. A trained optimizer writes, per reward it optimises, a raw
curve with the columns `measurement.RAW_COLUMNS`, measured by `measurement.Measure`;
`curves.trained_rows` turns every raw curve into ``curves.csv`` rows the same way.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from transformers import PrinterCallback, ProgressCallback

from rewardlab.cache import Cache, StageResult
from rewardlab.progress import TrainerProgress
from rewardlab.rewards.base import Reward
from rewardlab.specs import SamplingConfig

KEPT = ("model.safetensors", "config.json", "generation_config.json")  # of each checkpoint


@dataclass
class OptimizerContext:
    """What an optimizer may use: the task, the base policy, the study's rewards (by name), its
    preference stage, held-out prompts for measurement and the stage runner."""

    task: object
    task_cfg: object
    seed: int
    cache: Cache
    policy: StageResult
    preferences: StageResult
    rewards: dict[str, Reward]
    sampling: SamplingConfig
    train_prompts: Callable[[int], list[str]]  # n -> the first n prompts of the "rl" stream
    eval_prompts: Callable[[int], list[str]]  # n -> held-out prompts (those of the pool)
    scores: pd.DataFrame  # the base policy's pool, one column per reward (the rule's: gold)
    device: str = "cpu"
    split_prompts: Callable[[str, int], list[str]] | None = None  # (split, n) -> its n prompts
    stages: dict[str, StageResult] = field(default_factory=dict)

    def stage(self, label: str, name: str, fn: Callable[..., None], **inputs) -> StageResult:
        """A resumable stage via the cache, recorded under `label` for the run folder."""
        res = self.cache.run(name, fn, resumable=True, shown_as=label, **inputs)
        self.stages[label] = res
        return res


@dataclass
class Trained:
    """One trained optimizer run: its algorithm, the reward it optimised (None: none, as DPO),
    the label of its stage in the run folder, its raw curve, and settings kept for analyses."""

    optimizer: str
    reward: str
    proxy: str | None
    label: str
    raw: pd.DataFrame
    beta: float = 0.0


class _CachedDecodingPad(logging.Filter):
    """transformers' "We strongly recommend passing in an `attention_mask`" fires inside TRL's
    generation: with unpadded prompts `generate` drops the all-ones mask, and at a cached
    decoding step a finished row's new token is the pad token, which the one-token check takes
    for padding. Nothing is padded there, so the warning is false; this drops it, and only it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(
            "We strongly recommend passing in an `attention_mask`"
        )


logging.getLogger("transformers.modeling_utils").addFilter(_CachedDecodingPad())


def quiet(trainer, show: bool) -> None:
    """In logs and tests (no terminal): no per-step dictionaries or bars from the trainer."""
    if not show:
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)


def last_checkpoint(folder: Path) -> Path | None:
    """The trainer checkpoint with the highest step in `folder`, if any is complete."""
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[1])) if done else None


def common_args(device: str) -> dict:
    """TrainingArguments every trained optimizer shares: full precision, no gradient
    checkpointing, checkpoints only when `Measure` asks, no logging integrations."""
    return dict(bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=device == "cpu",
                save_strategy="no", report_to=[])  # fmt: skip


def train_and_keep(trainer, work: Path, out: Path, tok, desc: str = "train") -> None:
    """Train (resuming from the last checkpoint in `work`, and saying so), then write the
    artifact to `out`: curve.csv, checkpoints/step-N/ (policy weights at each measurement),
    final/ and trainer_log.json. Progress is shown as `desc` (`progress.TrainerProgress`)."""
    from rewardlab.optimize.measurement import CURVE_FILE

    trainer.add_callback(TrainerProgress(desc))
    ckpt = last_checkpoint(work / "trainer")
    # TRL writes a model card at every checkpoint (a third of a checkpoint's time here); the
    # checkpoints hold what resuming and the per-measurement weights need, and nothing else
    trainer.create_model_card = lambda *a, **k: None
    model = trainer.model
    if getattr(model.config, "tie_word_embeddings", False) and model._tied_weights_keys:
        # a tied lm_head is not in a checkpoint; named here, the trainer ties it again on a
        # resume instead of warning that the checkpoint lacks it
        model._keys_to_ignore_on_save = set(model._tied_weights_keys)
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    shutil.copy2(work / CURVE_FILE, out / CURVE_FILE)
    for c in sorted((work / "trainer").glob("checkpoint-*")):
        dst = out / "checkpoints" / f"step-{int(c.name.split('-')[1]):05d}"
        dst.mkdir(parents=True)
        for f in c.iterdir():
            if f.name in KEPT or f.name.startswith("tokenizer"):
                shutil.copy2(f, dst / f.name)
    trainer.model.save_pretrained(out / "final")
    tok.save_pretrained(out / "final")
    (out / "trainer_log.json").write_text(
        json.dumps(trainer.state.log_history, indent=1, default=str)
    )
