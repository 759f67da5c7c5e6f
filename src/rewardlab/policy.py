"""The base policy: SFT on a task's demonstrations, sampling, and per-token log-probabilities.

A sequence is ``<bos> prompt completion <eos>``; the model is trained and scored on the completion
and the closing ``<eos>`` only.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rewardlab.common.lazy import F, no_grad, torch
from rewardlab.models import (
    build_causal_lm,
    check_positions,
    count_params,
    load_tokenizer,
    positions_for,
    to_device,
)
from rewardlab.progress import bar
from rewardlab.seeding import seed_everything
from rewardlab.sequences import Encoded, by_length, encode, encode_prompt
from rewardlab.specs import ModelSpec, Strict, spec_key
from rewardlab.tasks import TaskConfig, build_tokenizer, checked_gold, split_prompts
from rewardlab.training import minibatch_train


def never_sampled(tok: PreTrainedTokenizerBase) -> list[int]:
    """Special tokens the policy may not emit: padding, ``<bos>`` and unknown (never ``<eos>``)."""
    ids = {tok.pad_token_id, tok.bos_token_id, tok.unk_token_id} - {tok.eos_token_id, None}
    return sorted(ids)


def policy_logits(logits: torch.Tensor, tok: PreTrainedTokenizerBase) -> torch.Tensor:
    """The model's logits with `never_sampled` tokens set to -inf: pi is the softmax of these."""
    banned = never_sampled(tok)
    if banned:
        logits = logits.clone()
        logits[..., banned] = -torch.inf
    return logits


def token_logprobs(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    completions: Sequence[str],
    max_new_tokens: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log pi(y_t | x, y_<t) of each completion token (and ``<eos>``), with pi the
    softmax of `policy_logits`.

    Returns ``(logp, mask)``, both (B, T-1): logp[b, t] is the log-probability of token t+1 given
    tokens 0..t; mask[b, t] = 1 where token t+1 is a completion token. The sequence log-probability
    is ``(logp * mask).sum(-1)``; pass the sampler's `max_new_tokens` to score cut completions
    as `sample` did (without ``<eos>``).
    """
    enc = encode(tok, prompts, completions, max_new_tokens)
    return batch_logprobs(model, tok, *enc.batch(range(len(enc))))


@no_grad
def sequence_logprobs(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    completion_ids: Sequence[Sequence[int]],
    batch_size: int = 1024,
) -> np.ndarray:
    """log pi(y | x) of each completion given as the token ids that were sampled (`sample_rows`'s
    `ids_out`, ``<eos>`` included when sampled), not re-tokenized from text: the sum over its
    tokens of `batch_logprobs`, in batches of similar length."""
    prompt_ids = {p: encode_prompt(tok, p) for p in dict.fromkeys(prompts)}
    enc = Encoded([prompt_ids[p] + list(c) for p, c in zip(prompts, completion_ids, strict=True)],
                  [len(prompt_ids[p]) for p in prompts], tok.pad_token_id)  # fmt: skip
    out = np.zeros(len(enc))
    for idx in by_length(enc.lengths, batch_size):
        lp, mask = batch_logprobs(model, tok, *enc.batch(idx))
        out[idx] = (lp * mask).sum(-1).cpu().numpy()
    return out


def batch_logprobs(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    ids: torch.Tensor,
    att: torch.Tensor,
    cm: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`token_logprobs` of an already padded batch (`Encoded.batch`)."""
    ids, att, cm = to_device(model, ids, att, cm)
    check_positions(model, ids.shape[1], "scoring log-probabilities")
    logits = model(input_ids=ids, attention_mask=att).logits  # (B, T, V)
    logp = torch.log_softmax(policy_logits(logits[:, :-1].float(), tok), dim=-1)  # (B, T-1, V)
    logp = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)  # (B, T-1)
    mask = cm[:, 1:].to(logp.dtype)
    return torch.where(mask.bool(), logp, 0.0), mask  # padding targets may be -inf: zero them


def train_sft(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    completions: Sequence[str],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    rng: np.random.Generator,
    progress: bool = True,
) -> list[float]:
    """Maximise the log-likelihood of the completions: loss = -mean_t log pi(y_t | x, y_<t).

    AdamW with a linear warm-up over the first 5% of steps and cosine decay. Returns the loss of
    every step.
    """

    enc = encode(tok, prompts, completions)  # tokenized once

    def loss_of(idx: np.ndarray) -> torch.Tensor:
        logp, mask = batch_logprobs(model, tok, *enc.batch(idx))
        return -(logp * mask).sum() / mask.sum()

    return minibatch_train(model, len(prompts), loss_of, epochs=epochs, batch_size=batch_size, lr=lr,
                           rng=rng, warmup=True, desc="sft", progress=progress)  # fmt: skip


@no_grad
def sample(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    prompt: str,
    n: int,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    uniforms: torch.Tensor | None = None,
) -> tuple[list[str], np.ndarray]:
    """`n` completions of one prompt: `sample_rows` with `prompt` on every row and uniforms u of
    shape (n, max_new_tokens) drawn from `generator` up front (or given as `uniforms`)."""
    if uniforms is None:
        uniforms = torch.rand((n, max_new_tokens), generator=generator)  # (n, T)
    return sample_rows(
        model, tok, [prompt] * n, uniforms, max_new_tokens=max_new_tokens, temperature=temperature
    )


@no_grad
def sample_rows(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    uniforms: torch.Tensor,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    batch_size: int = 1024,
    desc: str | None = None,
    ids_out: list | None = None,
) -> tuple[list[str], np.ndarray]:
    """One completion per row j of ``prompts[j]``, sampled from softmax(logits / temperature).

    Token t of row j is the inverse CDF of the next-token distribution at ``uniforms[j, t]``
    (uniforms: (N, max_new_tokens), on the CPU): a row's completion is a function of its prompt
    and its uniforms alone, the same however the rows are batched. Rows are sorted by prompt
    length and run `batch_size` at a time, prompts left-padded, with a KV cache and explicit
    positions (position of a token = number of real tokens before it), so a row sees exactly
    what an unpadded forward pass sees.

    Returns the decoded completions (without ``<eos>``) and, per row, the sum of the
    log-probabilities of its sampled tokens under the sampling distribution (``<eos>`` included).
    A completion that reaches `max_new_tokens` without ``<eos>`` is cut there. The model may sit
    on any device; the draws are compared on the CPU, so a seed gives the same tokens wherever
    the model runs (up to the device's floating point). `desc` shows a progress bar. A list
    given as `ids_out` receives, per row, the token ids sampled (``<eos>`` included when sampled):
    the sequence itself, which decoding and tokenizing again need not give back
    (`sequence_logprobs` scores it).
    """
    if uniforms.shape != (len(prompts), max_new_tokens):
        raise ValueError(f"uniforms {tuple(uniforms.shape)} != ({len(prompts)}, {max_new_tokens})")
    model.eval()
    ids_of = {p: encode_prompt(tok, p) for p in dict.fromkeys(prompts)}  # each prompt once
    rows = [ids_of[p] for p in prompts]
    if not rows:
        return [], np.zeros(0)
    batches = by_length([len(r) for r in rows], batch_size)
    longest = int(batches[-1][-1])
    check_positions(model, len(rows[longest]) + max_new_tokens,
                    f"sampling prompt {prompts[longest]!r}")  # fmt: skip
    texts: list[str] = [""] * len(rows)
    sampled: list[list[int]] = [[] for _ in rows]
    logps = np.zeros(len(rows))
    for idx in bar(batches, desc=desc or "sample", enabled=desc is not None):
        t, lp, got = _sample_batch(model, tok, [rows[i] for i in idx], uniforms[idx],
                                   max_new_tokens, temperature)  # fmt: skip
        for k, i in enumerate(idx):
            texts[i], sampled[i] = t[k], got[k]
        logps[idx] = lp
    if ids_out is not None:
        ids_out[:] = sampled
    return texts, logps


def _keep_rows(past, keep: torch.Tensor) -> None:
    """Keep only the batch rows `keep` of a KV cache, in place."""
    if hasattr(past, "batch_select_indices"):
        past.batch_select_indices(keep)
    else:  # older transformers: any cache can be reordered (a subset of rows is one order)
        past.reorder_cache(keep)


def _sample_batch(model, tok, rows: list[list[int]], uniforms, max_new_tokens, temperature):
    """`sample_rows` on one batch of encoded prompts."""
    n, P = len(rows), max(len(r) for r in rows)
    ids = torch.full((n, P), tok.pad_token_id, dtype=torch.long)  # left-padded prompts
    att = torch.zeros((n, P), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, P - len(r) :] = torch.tensor(r)
        att[b, P - len(r) :] = 1
    pos = (att.cumsum(1) - 1).clamp(min=0)  # (n, P)
    dev = next(model.parameters()).device
    cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else None
    cache_kw = cache_kw or "past_key_values"  # older transformers and some architectures
    past = None
    cur = ids
    live = torch.arange(n)  # the rows in the batch; finished rows leave it
    done = torch.zeros(n, dtype=torch.bool)  # of the rows in `live`
    out = torch.full((n, max_new_tokens), tok.pad_token_id, dtype=torch.long)
    logp_sum = torch.zeros(n)
    for t in range(max_new_tokens):
        res = model(input_ids=cur.to(dev), attention_mask=att.to(dev), position_ids=pos.to(dev),
                    use_cache=True, **{cache_kw: past})  # fmt: skip
        past = getattr(res, "cache", None) or res.past_key_values
        logits = policy_logits(res.logits[:, -1].float().cpu(), tok) / temperature  # (live, V)
        logp = F.log_softmax(logits, dim=-1)
        cdf = logp.exp().cumsum(-1)  # (live, V)
        u = uniforms[live, t : t + 1].contiguous()
        nxt = torch.searchsorted(cdf, u, right=True).squeeze(-1)  # (live,)
        nxt = nxt.clamp(max=cdf.shape[-1] - 1)  # u above a cdf that rounds below 1
        logp_sum[live] += torch.where(done, 0.0, logp.gather(-1, nxt[:, None]).squeeze(-1))
        nxt = torch.where(done, tok.pad_token_id, nxt)
        out[live, t] = nxt
        done |= nxt == tok.eos_token_id
        if done.all():
            break
        if done.sum() * 8 >= len(done):  # an eighth finished: drop them from the batch and cache
            keep = (~done).nonzero().squeeze(-1)
            live, nxt, att, pos, done = live[keep], nxt[keep], att[keep], pos[keep], done[keep]
            _keep_rows(past, keep.to(dev))
        cur = nxt[:, None]
        pos = pos[:, -1:] + 1
        att = torch.cat([att, torch.ones((len(live), 1), dtype=att.dtype)], dim=1)
    texts, sampled = [], []
    for row in out.tolist():
        if tok.eos_token_id in row:
            row = row[: row.index(tok.eos_token_id) + 1]
        sampled.append(row)
        text = row[:-1] if row and row[-1] == tok.eos_token_id else row
        texts.append(tok.decode(text, skip_special_tokens=True).strip())
    return texts, logp_sum.numpy(), sampled


# ---------------------------------------------------------------- the base policy's stage


class PolicyConfig(Strict):
    """The base policy: a model trained by SFT on the task's demonstrations."""

    model: ModelSpec = Field(default_factory=ModelSpec, description="size spec or local folder")
    train_prompts: int = Field(4000, ge=1, description="demonstrations used for SFT")
    epochs: int = Field(3, ge=0, description="SFT passes over the demonstrations (0: as built)")
    lr: float = Field(3e-3, gt=0, description="peak AdamW learning rate (warm-up, cosine decay)")
    batch_size: int = Field(64, ge=1, description="demonstrations per optimizer step")

    def cache_key(self) -> dict:
        """The config, with a local model folder keyed by its content."""
        return spec_key(self)


def stage_policy(
    cfg: PolicyConfig, task_cfg: TaskConfig, seed: int, device: str, out: Path
) -> None:
    """Train the base policy on the task's demonstrations (or take a local model folder)."""
    task = task_cfg.load()
    g = seed_everything(seed, "policy")
    t0 = time.perf_counter()
    tok = load_tokenizer(cfg.model.path) if cfg.model.path else build_tokenizer(task.vocab)
    prompts = split_prompts(task, "sft", cfg.train_prompts, seed)
    demos = task.demonstrations(prompts, task_cfg.demo_noise, g)
    checked_gold(task, prompts[:8], demos[:8])  # the task's contract, checked before training
    longest = max(len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    model = build_causal_lm(cfg.model, tok, positions_for(longest, task.max_new_tokens)).to(device)
    losses = train_sft(
        model, tok, prompts, demos, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, rng=g
    )
    model.cpu().save_pretrained(out)
    tok.save_pretrained(out)
    metrics = dict(
        params=count_params(model),
        demo_gold_mean=float(np.mean(checked_gold(task, prompts, demos))),
        sft_first_loss=losses[0] if losses else None,
        sft_final_loss=float(np.mean(losses[-20:])) if losses else None,
        steps=len(losses),
        seconds=time.perf_counter() - t0,
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
