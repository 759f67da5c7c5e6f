"""Learned reward models (kind `learned`): Bradley-Terry training on the study's preference pairs,
the training stage, and scoring as a reward function."""

from __future__ import annotations

import itertools
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
from rewardlab.models import (
    build_reward_model,
    count_params,
    load_tokenizer,
    positions_for,
)
from rewardlab.preferences import make_pairs, split_pairs
from rewardlab.rewards.base import Reward, RewardBase
from rewardlab.seeding import derive, seed_everything
from rewardlab.sequences import batch_scores, encode, score_batched, score_encoded
from rewardlab.specs import ModelSpec, spec_key
from rewardlab.tasks import build_tokenizer
from rewardlab.training import minibatch_train

if TYPE_CHECKING:  # types only: the context is built by the study; transformers loads with a model
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from rewardlab.context import StudyContext

NORM_FILE = "reward_norm.json"
STAGES = ("reward_model",)  # the cache stages it builds (`rewardlab run --rebuild` names them)


class Config(RewardBase):
    """A reward model trained with Bradley-Terry on the study's preference pairs."""

    kind: Literal["learned"] = Field("learned", description="reward source: a learned model")
    model: ModelSpec = Field(default_factory=ModelSpec, description="size or local folder")
    init_from_policy: bool = Field(False, description="start from the base policy's weights")
    train_pairs: int | None = Field(None, ge=1, description="use the first N training pairs")
    skip_pairs: int = Field(
        0, ge=0, description="skip the first N training pairs (with train_pairs: two models on "
        "separate pairs, e.g. RL's monitor beside the reward it watches)",
    )  # fmt: skip
    epochs: int = Field(
        3, ge=1, description="passes over the training pairs (the most, with patience)"
    )
    lr: float = Field(1e-3, gt=0, description="peak AdamW learning rate (cosine decay)")
    batch_size: int = Field(64, ge=1, description="pairs per optimizer step")
    patience: int | None = Field(
        None,
        ge=1,
        description="early stopping: hold out val_fraction of the training pairs, stop when their "
        "loss has not improved for this many epochs and keep the best epoch's weights; "
        "null trains every epoch",
    )
    val_fraction: float = Field(
        0.1, gt=0, lt=1, description="share of the training pairs held out for early stopping"
    )

    def training(self) -> dict:
        """What the trained model depends on besides the data (not its name)."""
        out = spec_key(self, include=set(Config.model_fields) - {"name", "kind"})
        if self.patience is None:  # val_fraction is unused; keys of earlier models stay valid
            out.pop("patience"), out.pop("val_fraction")
        if not self.skip_pairs:  # as before it existed
            out.pop("skip_pairs")
        return out


def _accuracy(rc: np.ndarray, rr: np.ndarray) -> tuple[float, float]:
    return float((rc > rr).mean()), float((rc - rr).mean())


# gold margins |gold_chosen - gold_rejected| as fractions of the task's gold range: the bins of
# the held-out accuracy, so a reader sees which differences a model can and cannot tell apart
MARGIN_EDGES = (0.0, 0.05, 0.1, 0.2, 0.4, 1.0)


def accuracy_by_margin(
    rc: np.ndarray, rr: np.ndarray, margin: np.ndarray, edges: Sequence[float] = MARGIN_EDGES
) -> dict[str, float]:
    """Pairwise accuracy mean(rc > rr) within each bin [edges[k], edges[k+1]) of the gold margin
    (the last bin closed); keys ``acc_margin_<lo>_<hi>``, NaN for an empty bin, and
    ``n_margin_<lo>_<hi>`` the pair counts."""
    out = {}
    for k, (lo, hi) in enumerate(itertools.pairwise(edges)):
        last = k == len(edges) - 2
        inside = (margin >= lo) & ((margin <= hi) if last else (margin < hi))
        key = f"{lo:.2f}_{hi:.2f}"
        out[f"acc_margin_{key}"] = (
            float((rc[inside] > rr[inside]).mean()) if inside.any() else math.nan
        )
        out[f"n_margin_{key}"] = int(inside.sum())
    return out


def _pair_scores(model, tok, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    p = pairs["prompt"].tolist()
    r = score_batched(model, tok, p + p, pairs["chosen"].tolist() + pairs["rejected"].tolist())
    return r[: len(p)], r[len(p) :]


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
    patience: int | None = None,
    val_fraction: float = 0.1,
    gold_width: float = 1.0,
) -> dict:
    """Fit r with the Bradley-Terry loss  L = -mean log sigmoid(r(x, y_c) - r(x, y_r)).

    (Christiano et al. 2017; Ouyang et al. 2022, eq. 1.) AdamW with cosine decay over `epochs`.
    With `patience`, the last `val_fraction` of the training pairs are held out (n_val of them),
    the model is fitted on the first n - n_val, L on the held-out pairs is computed after every
    epoch, training stops once it has not improved for `patience` epochs, and the weights of the
    epoch with the lowest held-out L are kept (early stopping).

    Returns metrics: final train loss, train and held-out pairwise accuracy and mean margin, the
    held-out accuracy by gold-margin bin (`accuracy_by_margin` of |gold_c - gold_r| / `gold_width`,
    when the test pairs carry gold), the epochs run and kept, and the mean and standard deviation
    of r over the fitted completions (used to standardise the scores). The pairs are tokenized
    once: sequence k < n is pair k's chosen completion, n + k its rejected one.
    """
    if len(train) == 0:
        raise RewardLabError("no training pairs: every sampled pair was a tie or the pool is empty")
    n_val = max(1, round(val_fraction * len(train))) if patience is not None else 0
    if patience is not None and len(train) - n_val < 1:
        raise RewardLabError(
            f"early stopping needs at least 2 training pairs; there are {len(train)}"
        )
    val, train = train.iloc[len(train) - n_val :], train.iloc[: len(train) - n_val]
    n = len(train)
    prompts, chosen, rejected = (train[c].tolist() for c in ("prompt", "chosen", "rejected"))
    enc = encode(tok, prompts + prompts, chosen + rejected)

    def loss_of(idx: np.ndarray) -> torch.Tensor:
        r = batch_scores(model, enc, np.concatenate([idx, idx + n]))
        rc, rr = r[: len(idx)], r[len(idx) :]
        return -F.logsigmoid(rc - rr).mean()

    stop = _EarlyStopping(model, tok, val, patience) if patience is not None else None
    losses = minibatch_train(model, n, loss_of, epochs=epochs, batch_size=batch_size, lr=lr,
                             rng=rng, warmup=False, desc="reward model", progress=progress,
                             on_epoch=stop)  # fmt: skip
    if stop is not None and stop.state is not None:
        model.load_state_dict(stop.state)
    all_r = score_encoded(model, enc)  # the fitted completions: accuracy and the scale
    train_acc, train_margin = _accuracy(all_r[:n], all_r[n:])
    test_acc, test_margin, by_margin = _test_metrics(model, tok, test, gold_width)
    return dict(
        train_pairs=n,
        val_pairs=n_val,
        test_pairs=len(test),
        final_loss=float(np.mean(losses[-max(1, len(losses) // 10) :])),
        train_accuracy=train_acc,
        test_accuracy=test_acc,
        train_margin=train_margin,
        test_margin=test_margin,
        epochs_run=len(stop.history) if stop is not None else epochs,
        best_epoch=stop.epoch + 1 if stop is not None else epochs,
        val_loss=stop.loss if stop is not None else math.nan,
        **by_margin,
        norm_mean=float(all_r.mean()),
        norm_std=float(all_r.std() + 1e-8),
        history=stop.history if stop is not None else [],
    )


class _EarlyStopping:
    """After every epoch, the Bradley-Terry loss on the held-out pairs `val`; keeps the weights
    of the epoch with the lowest (`state`) and says to stop once `patience` epochs have not
    improved on it."""

    def __init__(self, model, tok, val: pd.DataFrame, patience: int):
        self.model, self.patience, self.n = model, patience, len(val)
        vp = val["prompt"].tolist()
        self.enc = encode(tok, vp + vp, val["chosen"].tolist() + val["rejected"].tolist())
        self.history: list[dict] = []
        self.loss, self.epoch, self.state = math.inf, -1, None

    def __call__(self, epoch: int) -> bool:
        r = score_encoded(self.model, self.enc)
        d = torch.from_numpy(r[: self.n] - r[self.n :])
        loss = float(-F.logsigmoid(d).mean())
        self.history.append(
            dict(epoch=epoch, val_loss=loss, val_accuracy=float((d > 0).float().mean()))
        )
        if loss < self.loss:
            self.state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.loss, self.epoch = loss, epoch
        return epoch - self.epoch >= self.patience


def _test_metrics(model, tok, test: pd.DataFrame, gold_width: float) -> tuple[float, float, dict]:
    """Held-out accuracy and mean margin, and the accuracy by gold-margin bin when the pairs
    carry gold (NaN and {} without test pairs)."""
    if not len(test):
        return math.nan, math.nan, {}
    rc, rr = _pair_scores(model, tok, test)
    acc, margin = _accuracy(rc, rr)
    if not {"gold_chosen", "gold_rejected"} <= set(test.columns):
        return acc, margin, {}
    gap = (test["gold_chosen"] - test["gold_rejected"]).abs().to_numpy() / gold_width
    return acc, margin, accuracy_by_margin(rc, rr, gap)


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
        from transformers import AutoModelForSequenceClassification

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
    extra: KeyedTable | None = None,
) -> None:
    """Train member `member` of a reward model (`cfg` = `Config.training()`), seeded by the
    stream (seed, "reward_model", member); write the model, its tokenizer, the score
    normalisation and metrics. `extra`: more training pairs (a refresh's, put first so that
    early stopping holds out the study's own pairs), saved beside the model."""
    cfg = Config(name="training", **cfg)
    task = task_cfg.load()
    rng = seed_everything(seed, "reward_model", member)
    train, test = split_pairs(preferences, cfg.train_pairs, "a reward model", cfg.skip_pairs)
    if extra is not None:
        train = pd.concat([extra.df[train.columns], train], ignore_index=True)
        extra.df.to_parquet(out / "refresh_pairs.parquet")
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
    lo, hi = task.gold_range
    metrics = train_reward_model(model, tok, train, test, epochs=cfg.epochs, lr=cfg.lr,
                                 batch_size=cfg.batch_size, rng=rng, patience=cfg.patience,
                                 val_fraction=cfg.val_fraction, gold_width=hi - lo)  # fmt: skip
    metrics.update(params=count_params(model), seconds=time.perf_counter() - t0, member=member)
    model.cpu().save_pretrained(out)
    tok.save_pretrained(out)
    (out / NORM_FILE).write_text(
        json.dumps({k: metrics[k] for k in ("norm_mean", "norm_std")}, indent=1)
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))


def train_members(cfg: Config, members: int, ctx: StudyContext) -> list[tuple[StageResult, dict]]:
    """Train (or take from the cache) members 0..members-1 of `cfg`: their stages and metrics.
    Member 0 of an ensemble is the single model of the same spec, so they are trained once."""
    out = []
    for m in range(members):
        label = cfg.name if members == 1 else f"{cfg.name}-m{m}"
        res = ctx.stage(
            f"rm-{label}",
            "reward_model",
            stage_reward_model,
            shown_as=label,
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


def refresher(cfg: Config, ctx: StudyContext):
    """`Reward.refresh` of a Bradley-Terry model (iterated RLHF): the policy's samples are paired
    per prompt and labelled by gold as the study's pairs are (`make_pairs` with the study's
    preference config), and the model is retrained from scratch on those pairs and the study's.
    Every sample is a gold call."""

    def refresh(samples: pd.DataFrame):
        pool = samples.assign(prompt_id=pd.factorize(samples.prompt)[0])
        rng = np.random.default_rng(derive(ctx.seed, "refresh", "pairs", len(samples)))
        pairs = make_pairs(pool, ctx.preference_cfg, rng).assign(split="train")
        res = ctx.cache.run("reward_model", stage_reward_model, cfg=cfg.training(), member=0,
                            task_cfg=ctx.task_cfg, preferences=ctx.preferences,
                            policy=ctx.policy if cfg.init_from_policy else None, seed=ctx.seed,
                            device=ctx.device, extra=KeyedTable(pairs))  # fmt: skip
        return LearnedReward(res.path, device=ctx.device), res, len(samples)

    return refresh


def build(cfg: Config, ctx: StudyContext) -> list[Reward]:
    """Train the model on the study's preference pairs; score with `LearnedReward`."""
    trained = train_members(cfg, 1, ctx)
    ((res, met),) = trained
    fn = LearnedReward(res.path, device=ctx.device)
    key = {"stages": [res.hash]}
    meta = reward_meta(cfg, trained)
    return [Reward(cfg.name, "learned", fn, key, met["params"], meta, refresh=refresher(cfg, ctx))]
