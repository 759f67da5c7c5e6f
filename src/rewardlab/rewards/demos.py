"""A reward from demonstrations of correct behaviour (kind `demos`): a discriminator D(x, y)
trained to tell demonstrations (positives) from base-policy samples (negatives), whose logit is
the reward, an estimate of log p_demo(y|x) − log p_policy(y|x) up to a constant (the
density-ratio view of GAIL and AIRL: Ho & Ermon 2016; Fu et al. 2018). Also the demonstration
sets that `rewards.likelihood_ratio` shares.

Demonstration sets (`source`):
- ``clean``: the task's own demonstrations without noise on `demos` prompts of their own split;
  no gold calls.
- ``filtered``: the base policy's samples of the training preference pairs whose gold is above
  `threshold` (RLVR-style filtering of correct behaviour); one gold call per sample looked at.
Negatives: the samples of the training preference pairs (the base policy's).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from rewardlab.cache import KeyedTable, StageResult
from rewardlab.errors import RewardLabError
from rewardlab.models import count_params
from rewardlab.preferences import split_pairs
from rewardlab.rewards.base import Reward
from rewardlab.rewards.classifier import (
    BinaryConfig,
    binary_accuracy,
    binary_reward,
    labelled_samples,
    new_model,
    save_classifier,
    train_binary,
)
from rewardlab.seeding import derive, seed_everything
from rewardlab.specs import Strict
from rewardlab.tasks import build_tokenizer, split_prompts

if TYPE_CHECKING:  # a type only: the context is built by the study
    from rewardlab.context import StudyContext


class DemoSet(Strict):
    """Which demonstrations of correct behaviour a reward learns from."""

    source: Literal["clean", "filtered"] = Field(
        "clean",
        description="clean: the task's noiseless demonstrations; filtered: base-policy samples "
        "with gold above the threshold",
    )
    demos: int = Field(2000, ge=1, description="clean: how many demonstrations (one per prompt)")
    threshold: float | None = Field(
        None, description="filtered: gold above it counts as correct; null: the 75th percentile"
    )
    train_pairs: int | None = Field(
        None, ge=1, description="the samples of the first N training pairs are the negatives "
        "(and, filtered, the candidates)",
    )  # fmt: skip


def demonstrations(ds: DemoSet, task_cfg, preferences: StageResult, seed: int, tok) -> dict:
    """The demonstration set `ds` and the base-policy samples beside it.

    Returns ``pos`` and ``neg`` (DataFrames with prompt, completion), ``test_pos`` and
    ``test_neg`` (the same from held-out prompts), ``gold_calls`` (labels the set cost) and
    ``threshold`` (filtered only).

    Raises:
        RewardLabError: an empty set (a threshold above every sample), or a demonstration with a
            token the tokenizer cannot encode (named).
    """
    task = task_cfg.load()
    train, test = split_pairs(preferences, ds.train_pairs, "a demonstration reward")
    neg, test_neg = labelled_samples(train), labelled_samples(test)
    out = {"neg": neg, "test_neg": test_neg, "gold_calls": 0, "threshold": None}
    if ds.source == "clean":
        rng = np.random.default_rng(derive(seed, "demos", "clean"))
        prompts = split_prompts(task, "demos", ds.demos, seed)
        n_test = max(1, len(prompts) // 10)
        comps = task.demonstrations(prompts, 0.0, rng)
        pos = pd.DataFrame({"prompt": prompts, "completion": comps})
        out.update(pos=pos.iloc[n_test:], test_pos=pos.iloc[:n_test])
    else:
        threshold = float(neg.gold.quantile(0.75)) if ds.threshold is None else ds.threshold
        out.update(
            pos=neg[neg.gold > threshold], test_pos=test_neg[test_neg.gold > threshold],
            gold_calls=len(neg), threshold=threshold,
        )  # fmt: skip
        if not len(out["pos"]):
            raise RewardLabError(
                f"filtered demonstrations: no sample of the {len(neg)} has gold above "
                f"{threshold:g} (the best is {neg.gold.max():g}); lower the threshold"
            )
    check_encodable(tok, out["pos"].completion.tolist(), "demonstration")
    return out


def check_encodable(tok, texts: list[str], what: str) -> None:
    """Every text tokenizes without the unknown token, else a `RewardLabError` naming it."""
    if not texts:
        raise RewardLabError(f"the {what} set is empty")
    unk = tok.unk_token_id
    if unk is None:
        return
    for i, ids in enumerate(tok(texts, add_special_tokens=False)["input_ids"]):
        if unk in ids:
            bad = [w for w in texts[i].split() if tok.convert_tokens_to_ids(w) == unk]
            raise RewardLabError(
                f"{what} {i} ({texts[i]!r}) has words the task's tokenizer cannot encode: {bad}"
            )


STAGES = ("reward_model",)  # the cache stages it builds (`rewardlab run --rebuild` names them)


class Config(BinaryConfig):
    """A discriminator of demonstrations against base-policy samples; its logit is the reward."""

    kind: Literal["demos"] = Field("demos", description="reward source: demonstrations")
    demos: DemoSet = Field(default_factory=DemoSet, description="the demonstration set")


def stage_discriminator(
    cfg: dict, task_cfg, preferences: StageResult, seed: int, device: str, out: Path,
    extra: KeyedTable | None = None,
) -> None:  # fmt: skip
    """Train D on demonstrations (label 1) against base-policy samples (label 0), seeded by the
    stream (seed, "demos"); held-out accuracy on held-out prompts of both. `extra`: more
    negatives (a refresh: the policy's own samples, adversarial imitation), saved beside."""
    cfg = Config(name="training", **cfg)
    task = task_cfg.load()
    rng = seed_everything(seed, "demos")
    tok = build_tokenizer(task.vocab)
    d = demonstrations(cfg.demos, task_cfg, preferences, seed, tok)
    neg = d["neg"]
    if extra is not None:
        neg = pd.concat([neg, extra.df[["prompt", "completion"]]], ignore_index=True)
        extra.df.to_parquet(out / "refresh_samples.parquet")
    x = pd.concat([d["pos"], neg], ignore_index=True)
    labels = np.r_[np.ones(len(d["pos"])), np.zeros(len(neg))]
    tx = pd.concat([d["test_pos"], d["test_neg"]], ignore_index=True)
    tl = np.r_[np.ones(len(d["test_pos"])), np.zeros(len(d["test_neg"]))]
    model = new_model(cfg.model, tok, list(x.prompt) + list(tx.prompt), task, device)
    t0 = time.perf_counter()
    metrics = train_binary(model, tok, x.prompt, x.completion, labels, epochs=cfg.epochs,
                           lr=cfg.lr, batch_size=cfg.batch_size, rng=rng,
                           desc=f"discriminator ({cfg.demos.source} demonstrations)")  # fmt: skip
    metrics.update(
        source=cfg.demos.source, demonstrations=len(d["pos"]), negatives=len(neg),
        gold_calls=d["gold_calls"], threshold=d["threshold"], params=count_params(model),
        test_accuracy=binary_accuracy(model, tok, tx.prompt, tx.completion, tl),
        seconds=time.perf_counter() - t0, member=0,
    )  # fmt: skip
    save_classifier(model, tok, metrics, out)


def build(cfg: Config, ctx: StudyContext) -> list[Reward]:
    """Train the discriminator; score with its standardised logit. A refresh adds the policy's
    samples to the negatives (adversarial imitation), with no gold call."""
    trained_on = f"{cfg.demos.source} demonstrations"
    return binary_reward(cfg, ctx, stage_discriminator, trained_on, "demonstrations", False)
