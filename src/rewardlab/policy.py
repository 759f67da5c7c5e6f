"""The base policy: SFT on a task's demonstrations, sampling, and per-token log-probabilities.

A sequence is ``<bos> prompt completion <eos>``; the model is trained and scored on the completion
and the closing ``<eos>`` only.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rewardlab.models import check_positions, to_device
from rewardlab.training import minibatch_train


def encode_prompt(tok: PreTrainedTokenizerBase, prompt: str) -> list[int]:
    """``[<bos>] + ids(prompt)`` (no ``<bos>`` when the tokenizer has none)."""
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    return ([tok.bos_token_id] if tok.bos_token_id is not None else []) + ids


def encode_pairs(
    tok: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    completions: Sequence[str],
    max_new_tokens: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ``(input_ids, attention_mask, completion_mask)``, each of shape (B, T).

    completion_mask[b, t] = 1 where token t belongs to the completion or its closing ``<eos>``.
    With `max_new_tokens`, a completion of that many tokens or more was cut by the sampler and
    gets no ``<eos>`` (as `sample` returns it).
    """
    rows, masks = [], []
    for p, c in zip(prompts, completions, strict=True):
        pi = encode_prompt(tok, p)
        ci = tok(c, add_special_tokens=False)["input_ids"]
        if max_new_tokens is None or len(ci) < max_new_tokens:
            ci = ci + [tok.eos_token_id]
        rows.append(pi + ci)
        masks.append([0] * len(pi) + [1] * len(ci))
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), tok.pad_token_id, dtype=torch.long)
    att = torch.zeros((len(rows), T), dtype=torch.long)
    cm = torch.zeros((len(rows), T), dtype=torch.long)
    for b, (r, m) in enumerate(zip(rows, masks, strict=True)):
        ids[b, : len(r)] = torch.tensor(r)
        att[b, : len(r)] = 1
        cm[b, : len(m)] = torch.tensor(m)
    return ids, att, cm


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
    ids, att, cm = to_device(model, *encode_pairs(tok, prompts, completions, max_new_tokens))
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

    def loss_of(idx: np.ndarray) -> torch.Tensor:
        logp, mask = token_logprobs(
            model, tok, [prompts[i] for i in idx], [completions[i] for i in idx]
        )
        return -(logp * mask).sum() / mask.sum()

    return minibatch_train(model, len(prompts), loss_of, epochs=epochs, batch_size=batch_size, lr=lr,
                           rng=rng, warmup=True, desc="sft", progress=progress)  # fmt: skip


@torch.no_grad()
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
    """`n` completions of one prompt, sampled from softmax(logits / temperature).

    Token t of completion j is the inverse CDF of the next-token distribution at u[j, t], with
    u of shape (n, max_new_tokens) drawn from `generator` up front (or given as `uniforms`): the
    completions of rows j are then the same however the rows are split into calls.

    Returns the decoded completions (without ``<eos>``) and, per completion, the sum of the
    log-probabilities of its sampled tokens under the sampling distribution (``<eos>`` included).
    A completion that reaches `max_new_tokens` without ``<eos>`` is cut there. The model may sit
    on any device; the draws are made on the CPU with `generator`, so a seed gives the same
    tokens wherever the model runs (up to the device's floating point).
    """
    model.eval()
    if uniforms is None:
        uniforms = torch.rand((n, max_new_tokens), generator=generator)  # (n, T)
    ids = torch.tensor([encode_prompt(tok, prompt)] * n)  # (n, P): one prompt, no padding
    dev = next(model.parameters()).device
    check_positions(model, ids.shape[1] + max_new_tokens, f"sampling prompt {prompt!r}")
    cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else None
    cache_kw = cache_kw or "past_key_values"  # older transformers and some architectures
    past = None
    cur = ids
    att = torch.ones_like(ids)
    done = torch.zeros(n, dtype=torch.bool)
    out = torch.full((n, max_new_tokens), tok.pad_token_id, dtype=torch.long)
    logp_sum = torch.zeros(n)
    for t in range(max_new_tokens):
        res = model(input_ids=cur.to(dev), attention_mask=att.to(dev), use_cache=True,
                    **{cache_kw: past})  # fmt: skip
        past = getattr(res, "cache", None) or res.past_key_values
        logits = policy_logits(res.logits[:, -1].float().cpu(), tok) / temperature  # (n, V)
        logp = F.log_softmax(logits, dim=-1)
        cdf = logp.exp().cumsum(-1)  # (n, V)
        nxt = torch.searchsorted(cdf, uniforms[:, t : t + 1].contiguous(), right=True).squeeze(
            -1
        )  # (n,)
        nxt = nxt.clamp(max=cdf.shape[-1] - 1)  # u above a cdf that rounds below 1
        logp_sum += torch.where(done, 0.0, logp.gather(-1, nxt[:, None]).squeeze(-1))
        nxt = torch.where(done, tok.pad_token_id, nxt)
        out[:, t] = nxt
        done |= nxt == tok.eos_token_id
        if done.all():
            break
        cur = nxt[:, None]
        att = torch.cat([att, torch.ones((n, 1), dtype=att.dtype)], dim=1)
    texts = []
    for row in out.tolist():
        if tok.eos_token_id in row:
            row = row[: row.index(tok.eos_token_id)]
        texts.append(tok.decode(row, skip_special_tokens=True).strip())
    return texts, logp_sum.numpy()
