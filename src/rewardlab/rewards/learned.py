"""Learned reward models: Bradley-Terry training on preference pairs, and scoring as a reward
function."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from transformers import (
    AutoModelForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from rewardlab.errors import RewardLabError
from rewardlab.models import load_tokenizer
from rewardlab.policy import encode_pairs
from rewardlab.training import minibatch_train

NORM_FILE = "reward_norm.json"


def rm_scores(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    completions: Sequence[str],
) -> torch.Tensor:
    """The scalar head r(x, y) on ``<bos> x y <eos>``, shape (B,)."""
    ids, att, _ = encode_pairs(tok, prompts, completions)
    return model(input_ids=ids, attention_mask=att).logits[:, 0].float()


@torch.no_grad()
def score_batched(model, tok, prompts, completions, batch_size: int = 512) -> np.ndarray:
    """`rm_scores` over any number of samples, in batches, without gradients."""
    model.eval()
    out = [
        rm_scores(model, tok, prompts[i : i + batch_size], completions[i : i + batch_size])
        for i in range(0, len(prompts), batch_size)
    ]
    return torch.cat(out).numpy() if out else np.zeros(0)


def pairwise_accuracy(model, tok, pairs: pd.DataFrame) -> tuple[float, float]:
    """Fraction of pairs with r(chosen) > r(rejected), and the mean margin r(chosen) - r(rejected)."""
    if len(pairs) == 0:
        return math.nan, math.nan
    p = pairs["prompt"].tolist()
    rc = score_batched(model, tok, p, pairs["chosen"].tolist())
    rr = score_batched(model, tok, p, pairs["rejected"].tolist())
    return float((rc > rr).mean()), float((rc - rr).mean())


def train_reward_model(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    rng: np.random.Generator,
    progress: bool = True,
) -> dict:
    """Fit r with the Bradley-Terry loss  L = -mean log sigmoid(r(x, y_c) - r(x, y_r)).

    (Christiano et al. 2017; Ouyang et al. 2022, eq. 1.) AdamW with cosine decay. Returns metrics:
    final train loss, train and held-out pairwise accuracy and mean margin, and the mean and
    standard deviation of r over the training completions (used to standardise the scores).
    """
    n = len(train)
    if n == 0:
        raise RewardLabError("no training pairs: every sampled pair was a tie or the pool is empty")
    prompts, chosen, rejected = (train[c].tolist() for c in ("prompt", "chosen", "rejected"))

    def loss_of(idx: np.ndarray) -> torch.Tensor:
        p = [prompts[i] for i in idx]
        r = rm_scores(model, tok, p + p, [chosen[i] for i in idx] + [rejected[i] for i in idx])
        rc, rr = r[: len(idx)], r[len(idx) :]
        return -F.logsigmoid(rc - rr).mean()

    losses = minibatch_train(model, n, loss_of, epochs=epochs, batch_size=batch_size, lr=lr,
                             rng=rng, warmup=False, desc="reward model", progress=progress)  # fmt: skip
    train_acc, train_margin = pairwise_accuracy(model, tok, train)
    test_acc, test_margin = pairwise_accuracy(model, tok, test)
    all_r = score_batched(model, tok, prompts + prompts, chosen + rejected)
    return dict(
        train_pairs=n,
        test_pairs=len(test),
        final_loss=float(np.mean(losses[-max(1, len(losses) // 10) :])),
        train_accuracy=train_acc,
        test_accuracy=test_acc,
        train_margin=train_margin,
        test_margin=test_margin,
        norm_mean=float(all_r.mean()),
        norm_std=float(all_r.std() + 1e-8),
    )


class LearnedReward:
    """A trained reward model folder as a reward function.

    ``LearnedReward(path)(prompts, completions) -> list[float]`` returns the standardised score
    (r - norm_mean) / norm_std, with the statistics of the training completions saved beside the
    model, so members of an ensemble share one scale. ``raw=True`` returns r itself.
    """

    def __init__(self, path: str | Path, batch_size: int = 512, raw: bool = False):
        path = Path(path)
        self.tok = load_tokenizer(path)
        try:
            self.model = AutoModelForSequenceClassification.from_pretrained(
                path, local_files_only=True
            )
            norm = json.loads((path / NORM_FILE).read_text()) if not raw else {}
        except Exception as exc:
            raise RewardLabError(
                f"could not load the reward model in {path}: {type(exc).__name__}: {exc}"
            ) from None
        self.model.eval()
        self.mean, self.std = norm.get("norm_mean", 0.0), norm.get("norm_std", 1.0)
        self.batch_size = batch_size
        self.__name__ = f"rm:{path.name}"

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kw) -> list[float]:
        r = score_batched(self.model, self.tok, list(prompts), list(completions), self.batch_size)
        return ((r - self.mean) / self.std).tolist()
