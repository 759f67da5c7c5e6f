"""The likelihood-ratio reward (kind `likelihood_ratio`): r(x, y) = log π_demo(y|x) − log π_base(y|x),
with π_demo the base policy fine-tuned on a demonstration set (`rewards.demos.DemoSet`) and both
log-probabilities summed over the completion's tokens (and its ``<eos>``). It is the implicit
reward that direct alignment methods use (Rafailov et al. 2023, with β = 1 and π_ref = π_base).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from rewardlab.cache import StageResult
from rewardlab.common.lazy import no_grad
from rewardlab.models import count_params, load_tokenizer
from rewardlab.policy import batch_logprobs, train_sft
from rewardlab.rewards.base import Reward, RewardBase
from rewardlab.rewards.demos import DemoSet, demonstrations
from rewardlab.seeding import seed_everything
from rewardlab.sequences import by_length, encode

if TYPE_CHECKING:  # a type only: the context is built by the study
    from rewardlab.context import StudyContext

STAGES = ("policy",)  # the cache stages it builds (`rewardlab run --rebuild` names them)


class Config(RewardBase):
    """log π_demo − log π_base, π_demo fine-tuned from the base policy on demonstrations."""

    kind: Literal["likelihood_ratio"] = Field(
        "likelihood_ratio", description="reward source: log π_demo − log π_base"
    )
    demos: DemoSet = Field(default_factory=DemoSet, description="the demonstration set")
    epochs: int = Field(3, ge=1, description="fine-tuning passes over the demonstrations")
    lr: float = Field(1e-3, gt=0, description="peak AdamW learning rate (warm-up, cosine decay)")
    batch_size: int = Field(64, ge=1, description="demonstrations per optimizer step")
    max_new_tokens: int | None = Field(
        None, ge=1, description="completions this long were cut by the sampler and have no "
        "<eos> (null: the task's bound)",
    )  # fmt: skip

    def training(self) -> dict:
        """What the fine-tuned policy depends on besides the data (not its name)."""
        return self.model_dump(mode="json", exclude={"name", "kind", "max_new_tokens"})


@no_grad
def sequence_logprob(model, tok, prompts: Sequence[str], completions: Sequence[str],
                     max_new_tokens: int | None, batch_size: int = 256) -> np.ndarray:  # fmt: skip
    """Σ_t log π(y_t | x, y_<t) of each completion (its ``<eos>`` included unless cut), in
    batches of similar length; π is the sampling distribution (`policy.policy_logits`)."""
    enc = encode(tok, list(prompts), list(completions), max_new_tokens)
    out = np.zeros(len(enc), dtype=np.float64)
    for idx in by_length(enc.lengths, batch_size):
        logp, mask = batch_logprobs(model, tok, *enc.batch(idx))
        out[idx] = (logp * mask).sum(-1).double().cpu().numpy()
    return out


class LikelihoodRatioReward:
    """``LikelihoodRatioReward(demo_path, base_path)(prompts, completions)``: the summed
    log-probability of each completion under π_demo minus under π_base."""

    def __init__(self, demo_path: str | Path, base_path: str | Path, max_new_tokens: int | None,
                 device: str = "cpu"):  # fmt: skip
        from transformers import AutoModelForCausalLM

        load = lambda p: AutoModelForCausalLM.from_pretrained(p, local_files_only=True)  # noqa: E731
        self.demo, self.base = load(demo_path).to(device).eval(), load(base_path).to(device).eval()
        self.tok, self.max_new_tokens = load_tokenizer(base_path), max_new_tokens
        self.__name__ = f"likelihood_ratio:{Path(demo_path).name}"

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kw) -> list[float]:
        a = sequence_logprob(self.demo, self.tok, prompts, completions, self.max_new_tokens)
        b = sequence_logprob(self.base, self.tok, prompts, completions, self.max_new_tokens)
        return (a - b).tolist()


def stage_demo_policy(
    cfg: dict, task_cfg, policy: StageResult, preferences: StageResult, seed: int, device: str,
    out: Path,
) -> None:  # fmt: skip
    """Fine-tune the base policy on the demonstration set by maximum likelihood, seeded by the
    stream (seed, "likelihood_ratio"); write π_demo, its tokenizer and metrics."""
    from transformers import AutoModelForCausalLM

    cfg = Config(name="training", **cfg)
    rng = seed_everything(seed, "likelihood_ratio")
    tok = load_tokenizer(policy.path)
    d = demonstrations(cfg.demos, task_cfg, preferences, seed, tok)
    model = AutoModelForCausalLM.from_pretrained(policy.path, local_files_only=True).to(device)
    t0 = time.perf_counter()
    losses = train_sft(model, tok, d["pos"].prompt.tolist(), d["pos"].completion.tolist(),
                       epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, rng=rng)  # fmt: skip
    model.cpu().save_pretrained(out)
    tok.save_pretrained(out)
    metrics = dict(source=cfg.demos.source, demonstrations=len(d["pos"]),
                   gold_calls=d["gold_calls"], threshold=d["threshold"],
                   final_loss=float(np.mean(losses[-max(1, len(losses) // 10):])),
                   params=count_params(model), seconds=time.perf_counter() - t0)  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))


def build(cfg: Config, ctx: StudyContext) -> list[Reward]:
    """Fine-tune π_demo from the base policy; score with the log-likelihood ratio."""
    res = ctx.stage(f"demo-policy-{cfg.name}", "policy", stage_demo_policy, shown_as=f"{cfg.name}'s demonstrations", cfg=cfg.training(),
                    task_cfg=ctx.task_cfg, policy=ctx.policy, preferences=ctx.preferences,
                    seed=ctx.seed, device=ctx.device)  # fmt: skip
    met = json.loads((res.path / "metrics.json").read_text())
    cut = cfg.max_new_tokens or ctx.task.max_new_tokens
    fn = LikelihoodRatioReward(res.path, ctx.policy.path, cut, device=ctx.device)
    meta = dict(trained_on=f"{cfg.demos.source} demonstrations", demonstrations=met["demonstrations"],
                gold_calls=met["gold_calls"], members=1)  # fmt: skip
    key = {"stages": [res.hash, ctx.policy.hash], "max_new_tokens": cut}
    return [Reward(cfg.name, "likelihood_ratio", fn, key, met["params"], meta)]
