"""Learned reward models (kind `learned`): Bradley-Terry training on the study's preference pairs,
the training stage, and scoring as a reward function."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field
from transformers import (
    AutoModelForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from rewardlab.cache import StageResult
from rewardlab.errors import RewardLabError
from rewardlab.models import (
    build_reward_model,
    check_positions,
    count_params,
    load_tokenizer,
    positions_for,
    to_device,
)
from rewardlab.policy import Encoded, by_length, encode
from rewardlab.preferences import split_pairs
from rewardlab.rewards.base import Reward, RewardBase, RewardContext
from rewardlab.seeding import seed_everything
from rewardlab.specs import ModelSpec
from rewardlab.tasks import build_tokenizer
from rewardlab.training import minibatch_train

NORM_FILE = "reward_norm.json"


class Config(RewardBase):
    """A reward model trained with Bradley-Terry on the study's preference pairs."""

    kind: Literal["learned"] = Field("learned", description="reward source: a learned model")
    model: ModelSpec = Field(default_factory=ModelSpec, description="size or local folder")
    init_from_policy: bool = Field(False, description="start from the base policy's weights")
    train_pairs: int | None = Field(None, ge=1, description="use the first N training pairs")
    epochs: int = Field(3, ge=1, description="passes over the training pairs")
    lr: float = Field(1e-3, gt=0, description="peak AdamW learning rate (cosine decay)")
    batch_size: int = Field(64, ge=1, description="pairs per optimizer step")

    def training(self) -> dict:
        """What the trained model depends on besides the data (not its name)."""
        return self.model_dump(mode="json", include=set(Config.model_fields) - {"name", "kind"})


def batch_scores(model: PreTrainedModel, enc: Encoded, idx: Sequence[int]) -> torch.Tensor:
    """r(x, y) of the encoded sequences `idx`, shape (len(idx),)."""
    ids, att, _ = to_device(model, *enc.batch(idx))
    check_positions(model, ids.shape[1], "reward model scoring")
    return model(input_ids=ids, attention_mask=att).logits[:, 0].float()


@torch.no_grad()
def score_encoded(model: PreTrainedModel, enc: Encoded, batch_size: int = 512) -> np.ndarray:
    """r of every sequence of `enc`, without gradients, in batches of similar length."""
    model.eval()
    out = np.zeros(len(enc), dtype=np.float32)
    for idx in by_length(enc.lengths, batch_size):
        out[idx] = batch_scores(model, enc, idx).cpu().numpy()
    return out


def score_batched(model, tok, prompts, completions, batch_size: int = 512) -> np.ndarray:
    """The scalar head r(x, y) on ``<bos> x y <eos>`` of every sample, shape (B,), in batches of
    similar length, without gradients."""
    return score_encoded(model, encode(tok, prompts, completions), batch_size)


def pairwise_accuracy(model, tok, pairs: pd.DataFrame) -> tuple[float, float]:
    """Fraction of pairs with r(chosen) > r(rejected), and the mean margin r(chosen) - r(rejected)."""
    if len(pairs) == 0:
        return math.nan, math.nan
    p = pairs["prompt"].tolist()
    r = score_batched(model, tok, p + p, pairs["chosen"].tolist() + pairs["rejected"].tolist())
    return _accuracy(r[: len(p)], r[len(p) :])


def _accuracy(rc: np.ndarray, rr: np.ndarray) -> tuple[float, float]:
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
    The pairs are tokenized once: sequence k < n is pair k's chosen completion, n + k its
    rejected one.
    """
    n = len(train)
    if n == 0:
        raise RewardLabError("no training pairs: every sampled pair was a tie or the pool is empty")
    prompts, chosen, rejected = (train[c].tolist() for c in ("prompt", "chosen", "rejected"))
    enc = encode(tok, prompts + prompts, chosen + rejected)

    def loss_of(idx: np.ndarray) -> torch.Tensor:
        r = batch_scores(model, enc, np.concatenate([idx, idx + n]))
        rc, rr = r[: len(idx)], r[len(idx) :]
        return -F.logsigmoid(rc - rr).mean()

    losses = minibatch_train(model, n, loss_of, epochs=epochs, batch_size=batch_size, lr=lr,
                             rng=rng, warmup=False, desc="reward model", progress=progress)  # fmt: skip
    all_r = score_encoded(model, enc)  # the training completions: accuracy and the scale
    train_acc, train_margin = _accuracy(all_r[:n], all_r[n:])
    test_acc, test_margin = pairwise_accuracy(model, tok, test)
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

    def __init__(
        self, path: str | Path, batch_size: int = 512, raw: bool = False, device: str = "cpu"
    ):
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
        self.model.to(device).eval()
        self.mean, self.std = norm.get("norm_mean", 0.0), norm.get("norm_std", 1.0)
        self.batch_size = batch_size
        self.__name__ = f"rm:{path.name}"

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kw) -> list[float]:
        r = score_batched(self.model, self.tok, list(prompts), list(completions), self.batch_size)
        return ((r - self.mean) / self.std).tolist()


def stage_reward_model(
    cfg: dict,
    member: int,
    task_cfg,
    preferences: StageResult,
    policy: StageResult | None,
    seed: int,
    device: str,
    out: Path,
) -> None:
    """Train member `member` of a reward model (`cfg` = `Config.training()`), seeded by the
    stream (seed, "reward_model", member); write the model, its tokenizer, the score
    normalisation and metrics."""
    cfg = Config(name="training", **cfg)
    task = task_cfg.load()
    rng = seed_everything(seed, "reward_model", member)
    train, test = split_pairs(preferences, cfg.train_pairs, "a reward model")
    if policy is not None:  # initialised from the base policy: its tokenizer and body
        tok = load_tokenizer(policy.path)
    elif cfg.model.path:
        tok = load_tokenizer(cfg.model.path)
    else:
        tok = build_tokenizer(task.vocab)
    prompts = set(train.prompt) | set(test.prompt)
    longest = max(len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    positions = positions_for(longest, task.max_new_tokens)
    model = build_reward_model(
        cfg.model, tok, init_from=policy.path if policy else None, positions=positions
    )
    model.config.pad_token_id = tok.pad_token_id
    model.to(device)
    t0 = time.perf_counter()
    metrics = train_reward_model(
        model, tok, train, test, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, rng=rng
    )
    metrics.update(params=count_params(model), seconds=time.perf_counter() - t0, member=member)
    model.cpu().save_pretrained(out)
    tok.save_pretrained(out)
    (out / NORM_FILE).write_text(
        json.dumps({k: metrics[k] for k in ("norm_mean", "norm_std")}, indent=1)
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))


def train_members(cfg: Config, members: int, ctx: RewardContext) -> list[tuple[StageResult, dict]]:
    """Train (or take from the cache) members 0..members-1 of `cfg`: their stages and metrics.
    Member 0 of an ensemble is the single model of the same spec, so they are trained once."""
    out = []
    for m in range(members):
        label = cfg.name if members == 1 else f"{cfg.name}-m{m}"
        res = ctx.stage(
            f"rm-{label}",
            "reward_model",
            stage_reward_model,
            cfg=cfg.training(),
            member=m,
            task_cfg=ctx.task_cfg,
            preferences=ctx.preferences,
            policy=ctx.policy if cfg.init_from_policy else None,
            seed=ctx.seed,
            device=ctx.device,
        )
        out.append((res, json.loads((res.path / "metrics.json").read_text())))
    return out


def reward_meta(cfg: Config, trained: list[tuple[StageResult, dict]]) -> dict:
    """The rewards.csv columns of a learned model (or ensemble): size, data, accuracy."""
    mets = [m for _, m in trained]
    return dict(
        trained_on="preferences",
        train_pairs=mets[0]["train_pairs"],
        test_accuracy=float(np.mean([m["test_accuracy"] for m in mets])),
        members=len(mets),
        model=json.dumps(cfg.model.model_dump(mode="json"), sort_keys=True),
    )


def build(cfg: Config, ctx: RewardContext) -> list[Reward]:
    """Train the model on the study's preference pairs; score with `LearnedReward`."""
    trained = train_members(cfg, 1, ctx)
    ((res, met),) = trained
    fn = LearnedReward(res.path, device=ctx.device)
    key = {"stages": [res.hash]}
    return [
        Reward(cfg.name, "learned", fn, key, params=met["params"], meta=reward_meta(cfg, trained))
    ]
