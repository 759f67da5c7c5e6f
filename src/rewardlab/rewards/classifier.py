"""A reward learned from good/bad labels (kind `classifier`): a logistic classifier on single
samples, gold above a threshold = good, instead of comparisons; and the binary training that the
demonstration discriminator (`rewards.demos`) shares.

Label budget: the classifier labels the samples of the study's training preference pairs (the
same samples, and so the same gold calls, as a Bradley-Terry model on those pairs).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from rewardlab.cache import KeyedTable, StageResult
from rewardlab.common.lazy import F, torch
from rewardlab.errors import RewardLabError
from rewardlab.models import build_reward_model, count_params, positions_for
from rewardlab.preferences import split_pairs
from rewardlab.rewards.base import Reward, RewardBase
from rewardlab.rewards.learned import NORM_FILE, LearnedReward
from rewardlab.seeding import seed_everything
from rewardlab.sequences import batch_scores, encode, score_encoded
from rewardlab.specs import ModelSpec, spec_key
from rewardlab.tasks import build_tokenizer
from rewardlab.training import minibatch_train

if TYPE_CHECKING:  # a type only: the context is built by the study
    from rewardlab.context import StudyContext


class BinaryConfig(RewardBase):
    """Fields of a reward trained as a binary classifier (kinds classifier and demos)."""

    model: ModelSpec = Field(default_factory=ModelSpec, description="size or local folder")
    epochs: int = Field(3, ge=1, description="passes over the training samples")
    lr: float = Field(1e-3, gt=0, description="peak AdamW learning rate (cosine decay)")
    batch_size: int = Field(64, ge=1, description="samples per optimizer step")

    def training(self) -> dict:
        """What the trained model depends on besides the data (not its name)."""
        return spec_key(self, exclude={"name", "kind"})


STAGES = ("reward_model",)  # the cache stages it builds (`rewardlab run --rebuild` names them)


class Config(BinaryConfig):
    """A classifier of single samples, trained on gold-thresholded good/bad labels."""

    kind: Literal["classifier"] = Field("classifier", description="reward source: good/bad labels")
    threshold: float | None = Field(
        None, description="gold above it is good; null: the median gold of the labelled samples"
    )
    flip_rate: float = Field(0.0, ge=0, lt=0.5, description="label noise: each label flipped")
    train_pairs: int | None = Field(
        None, ge=1, description="label the samples of the first N training pairs (2N gold calls)"
    )


def train_binary(
    model,
    tok,
    prompts: Sequence[str],
    completions: Sequence[str],
    labels: np.ndarray,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    rng: np.random.Generator,
    desc: str = "classifier",
) -> dict:
    """Fit the logit f(x, y) with the logistic loss L = -mean[l log σ(f) + (1 - l) log σ(-f)]
    (binary cross-entropy with logits) on labels l ∈ {0, 1}; AdamW with cosine decay.

    At the optimum over all functions, f(x, y) = log p(y, l=1 | x) / p(y, l=0 | x), which for
    positives drawn from p₁ and negatives from p₀ in the ratio n₁ : n₀ is
    log p₁(y|x) / p₀(y|x) + log n₁ / n₀ (the density-ratio view of a discriminator).

    Returns the final training loss, training accuracy, class counts and the mean and standard
    deviation of f over the training samples (used to standardise the scores).
    """
    labels = np.asarray(labels, dtype=np.float32)
    if len(labels) == 0:
        raise RewardLabError(f"{desc}: no labelled samples to train on")
    n_pos = int(labels.sum())
    if n_pos in (0, len(labels)):
        raise RewardLabError(
            f"{desc}: all {len(labels)} labelled samples are {'good' if n_pos else 'bad'}, so "
            "one class is empty and there is nothing to tell apart (move the threshold)"
        )
    enc = encode(tok, list(prompts), list(completions))
    y = torch.from_numpy(labels)

    def loss_of(idx: np.ndarray) -> torch.Tensor:
        f = batch_scores(model, enc, idx)
        return F.binary_cross_entropy_with_logits(f, y[idx].to(f.device))

    losses = minibatch_train(model, len(labels), loss_of, epochs=epochs, batch_size=batch_size,
                             lr=lr, rng=rng, warmup=False, desc=desc)  # fmt: skip
    f = score_encoded(model, enc)
    return dict(
        samples=len(labels),
        positives=n_pos,
        final_loss=float(np.mean(losses[-max(1, len(losses) // 10) :])),
        train_accuracy=float(((f > 0) == (labels > 0.5)).mean()),
        norm_mean=float(f.mean()),
        norm_std=float(f.std() + 1e-8),
    )


def binary_accuracy(model, tok, prompts, completions, labels) -> float:
    """mean[(f(x, y) > 0) == l] of a trained classifier on held-out samples."""
    if not len(labels):
        return math.nan
    f = score_encoded(model, encode(tok, list(prompts), list(completions)))
    return float(((f > 0) == (np.asarray(labels) > 0.5)).mean())


def labelled_samples(pairs: pd.DataFrame) -> pd.DataFrame:
    """The samples of preference pairs, one row each: prompt, completion, gold."""
    return pd.DataFrame(
        {
            "prompt": pd.concat([pairs.prompt, pairs.prompt], ignore_index=True),
            "completion": pd.concat([pairs.chosen, pairs.rejected], ignore_index=True),
            "gold": pd.concat([pairs.gold_chosen, pairs.gold_rejected], ignore_index=True),
        }
    )


def save_classifier(model, tok, metrics: dict, out: Path) -> None:
    """The model folder as `LearnedReward` reads it: weights, tokenizer, score scale, metrics."""
    model.cpu().save_pretrained(out)
    tok.save_pretrained(out)
    (out / NORM_FILE).write_text(
        json.dumps({k: metrics[k] for k in ("norm_mean", "norm_std")}, indent=1)
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))


def new_model(spec: ModelSpec, tok, prompts: Sequence[str], task, device: str):
    """A one-logit sequence classifier of `spec` with room for the prompts and completions."""
    longest = max(len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    model = build_reward_model(spec, tok, positions=positions_for(longest, task.max_new_tokens))
    model.config.pad_token_id = tok.pad_token_id
    return model.to(device)


def stage_classifier(
    cfg: dict, task_cfg, preferences: StageResult, seed: int, device: str, out: Path,
    extra: KeyedTable | None = None,
) -> None:  # fmt: skip
    """Label the samples of the training pairs good (gold > threshold) or bad, flip each label
    with probability `flip_rate` (stream (seed, "classifier", "flips")), train; held-out
    accuracy on the test pairs' samples against their true labels. `extra`: more samples
    (prompt, completion, gold: a refresh's), labelled with the same threshold, saved beside."""
    cfg = Config(name="training", **cfg)
    task = task_cfg.load()
    rng = seed_everything(seed, "classifier")
    train, test = split_pairs(preferences, cfg.train_pairs, "a classifier")
    tr, te = labelled_samples(train), labelled_samples(test)
    threshold = float(tr.gold.median()) if cfg.threshold is None else cfg.threshold
    if extra is not None:
        tr = pd.concat([tr, extra.df[["prompt", "completion", "gold"]]], ignore_index=True)
        extra.df.to_parquet(out / "refresh_samples.parquet")
    true = (tr.gold > threshold).to_numpy()
    flips = seed_everything(seed, "classifier", "flips").random(len(true)) < cfg.flip_rate
    labels = np.where(flips, ~true, true)
    tok = build_tokenizer(task.vocab)
    model = new_model(cfg.model, tok, list(tr.prompt) + list(te.prompt), task, device)
    t0 = time.perf_counter()
    metrics = train_binary(model, tok, tr.prompt, tr.completion, labels, epochs=cfg.epochs,
                           lr=cfg.lr, batch_size=cfg.batch_size, rng=rng,
                           desc=f"classifier (gold > {threshold:.3g})")  # fmt: skip
    metrics.update(
        threshold=threshold, flipped=int(flips.sum()), gold_calls=len(tr), params=count_params(model),
        test_accuracy=binary_accuracy(model, tok, te.prompt, te.completion, te.gold > threshold),
        seconds=time.perf_counter() - t0, train_pairs=len(train), member=0,
    )  # fmt: skip
    save_classifier(model, tok, metrics, out)


def binary_reward(cfg: BinaryConfig, ctx: StudyContext, stage_fn, trained_on: str,
                  count: str, refresh_gold: bool) -> list[Reward]:  # fmt: skip
    """The study's stage ``rm-<name>`` built by `stage_fn` (a classifier or a discriminator)
    as a reward: its standardised logit (`LearnedReward`), ``rewards.csv`` columns with the
    metric `count` (what it was trained on), and a `Reward.refresh` that retrains the same
    stage from scratch with the policy's samples as ``extra``; they cost one gold call each when
    `refresh_gold` (labels), none otherwise (a discriminator's negatives)."""
    inputs = dict(cfg=cfg.training(), task_cfg=ctx.task_cfg, preferences=ctx.preferences,
                  seed=ctx.seed, device=ctx.device)  # fmt: skip
    res = ctx.stage(f"rm-{cfg.name}", "reward_model", stage_fn, shown_as=cfg.name, **inputs)
    met = json.loads((res.path / "metrics.json").read_text())
    meta = dict(trained_on=trained_on, **{count: met[count]}, gold_calls=met["gold_calls"],
                test_accuracy=met["test_accuracy"], members=1,
                model=json.dumps(cfg.model.model_dump(mode="json"), sort_keys=True))  # fmt: skip

    def refresh(samples: pd.DataFrame):
        new = ctx.cache.run("reward_model", stage_fn, **inputs, extra=KeyedTable(samples))
        return LearnedReward(new.path, device=ctx.device), new, len(samples) * refresh_gold

    fn = LearnedReward(res.path, device=ctx.device)
    return [Reward(cfg.name, cfg.kind, fn, {"stages": [res.hash]}, met["params"], meta,
                   refresh=refresh)]  # fmt: skip


def build(cfg: Config, ctx: StudyContext) -> list[Reward]:
    """Train on the study's labelled samples; score with the standardised logit. A refresh adds
    the policy's samples, labelled by gold with the study's threshold."""
    return binary_reward(cfg, ctx, stage_classifier, "good/bad labels", "train_pairs", True)
