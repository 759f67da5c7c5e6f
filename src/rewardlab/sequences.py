"""Sequences ``<bos> prompt completion <eos>`` tokenized once, padded in batches of similar
length, and read by a scalar head: the encoding every model of the lab shares (the policy's
log-probabilities, the reward models' scores, a neural gold's teacher)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rewardlab.common.lazy import no_grad, torch
from rewardlab.models import check_positions, to_device

if TYPE_CHECKING:  # types only: transformers loads with a model
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def _first(*ids: int | None) -> int | None:
    return next((i for i in ids if i is not None), None)


def begin_id(tok: PreTrainedTokenizerBase) -> int | None:
    """The token a sequence starts with: ``<bos>``, else an encoder's ``[CLS]``, else none."""
    return _first(tok.bos_token_id, getattr(tok, "cls_token_id", None))


def end_id(tok: PreTrainedTokenizerBase) -> int | None:
    """The token a finished completion ends with: ``<eos>``, else an encoder's ``[SEP]``."""
    return _first(tok.eos_token_id, getattr(tok, "sep_token_id", None))


def encode_prompt(tok: PreTrainedTokenizerBase, prompt: str) -> list[int]:
    """``[<bos>] + ids(prompt)`` (``[CLS]`` for an encoder's tokenizer; nothing when the
    tokenizer has neither)."""
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    b = begin_id(tok)
    return ([b] if b is not None else []) + ids


class Encoded:
    """Sequences ``<bos> prompt completion [<eos>]`` tokenized once: `ids[k]` the token ids of
    sequence k, `prompt_len[k]` how many of them are ``<bos>`` + prompt. Batches are padded from
    these (`batch`), so training passes tokenize nothing."""

    def __init__(self, ids: list[list[int]], prompt_len: list[int], pad_id: int):
        self.ids, self.pad_id = ids, pad_id
        self.prompt_len = np.array(prompt_len, dtype=np.int64)
        self.lengths = np.array([len(r) for r in ids], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded ``(input_ids, attention_mask, completion_mask)`` of sequences `idx`, each
        (B, T) with T the longest of them; completion_mask = 1 on completion tokens (and
        ``<eos>``)."""
        idx = list(idx)
        L = self.lengths[idx]
        T = int(L.max())
        pos = np.arange(T)[None, :]
        att = pos < L[:, None]  # (B, T)
        cm = att & (pos >= self.prompt_len[idx][:, None])
        flat = np.full((len(idx), T), self.pad_id, dtype=np.int64)
        flat[att] = np.concatenate([self.ids[i] for i in idx])
        return (torch.from_numpy(flat), torch.from_numpy(att.astype(np.int64)),
                torch.from_numpy(cm.astype(np.int64)))  # fmt: skip


def by_length(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices sorted by length (stable) and cut into batches of `batch_size`, for passes whose
    order does not matter: a batch holds sequences of similar length, so padding costs little."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def encode(
    tok: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    completions: Sequence[str],
    max_new_tokens: int | None = None,
) -> Encoded:
    """Tokenize ``<bos> prompt completion <eos>`` once per sequence (``[CLS] prompt completion
    [SEP]`` for an encoder's tokenizer, as a BERT reward model reads it). With `max_new_tokens`, a
    completion of that many tokens or more was cut by the sampler and gets no ``<eos>`` (as
    `sample` returns it)."""
    prompt_ids = {p: encode_prompt(tok, p) for p in dict.fromkeys(prompts)}
    comp_ids = tok(list(completions), add_special_tokens=False)["input_ids"] if completions else []
    ids, plen, end = [], [], end_id(tok)
    for p, ci in zip(prompts, comp_ids, strict=True):
        if end is not None and (max_new_tokens is None or len(ci) < max_new_tokens):
            ci = ci + [end]
        ids.append(prompt_ids[p] + ci)
        plen.append(len(prompt_ids[p]))
    return Encoded(ids, plen, tok.pad_token_id)


def batch_scores(model: PreTrainedModel, enc: Encoded, idx: Sequence[int]) -> torch.Tensor:
    """r(x, y) of the encoded sequences `idx`, shape (len(idx),)."""
    ids, att, _ = to_device(model, *enc.batch(idx))
    check_positions(model, ids.shape[1], "reward model scoring")
    return model(input_ids=ids, attention_mask=att).logits[:, 0].float()


@no_grad
def score_encoded(model: PreTrainedModel, enc: Encoded, batch_size: int = 512) -> np.ndarray:
    """r of every sequence of `enc`, without gradients, in batches of similar length."""
    model.eval()
    out = np.zeros(len(enc), dtype=np.float32)
    for idx in by_length(enc.lengths, batch_size):
        out[idx] = batch_scores(model, enc, idx).cpu().numpy()
    return out


def score_batched(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    completions: Sequence[str],
    batch_size: int = 512,
) -> np.ndarray:
    """The scalar head r(x, y) on ``<bos> x y <eos>`` of every sample, shape (B,), in batches of
    similar length, without gradients."""
    return score_encoded(model, encode(tok, prompts, completions), batch_size)
