"""Arithmetic of the lab's transformers: FLOPs of a forward pass, of training and of sampling,
counted from the model's shape (for the benchmarks' distance to the machine's limit).

A matmul of (m x k) by (k x n) costs 2mkn FLOPs. Per layer of width d with T tokens attended, a
token costs 8d^2 (Q, K, V and output projections) + f d^2 (the MLP: f = 16 for GPT-2's two
d x 4d matrices, 24 for Llama's three) + 4Td (QK^T and AV over all T positions, as the hardware
computes them); the output head adds 2dV (language model over V tokens) or 2d (scalar reward
head). Backward costs twice the forward (Kaplan et al. 2020, sec. 2.1), so training is 3x.
Embedding lookups, norms and activations are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable

from rewardlab.specs import ModelSpec


def forward_flops(spec: ModelSpec, vocab: int | None, tokens: int, context: int) -> int:
    """FLOPs of `tokens` tokens that each attend `context` positions, in a model of shape `spec`
    with an LM head over `vocab` tokens (None: a scalar reward head)."""
    d = spec.n_embd
    mlp = 16 if spec.arch == "gpt2" else 24
    per_layer = (8 + mlp) * d * d + 4 * context * d
    head = 2 * d * vocab if vocab is not None else 2 * d
    return tokens * (spec.n_layer * per_layer + head)


def sequences_flops(spec: ModelSpec, vocab: int | None, lengths: Iterable[int]) -> int:
    """Forward FLOPs of whole sequences of the given lengths, each padded to nothing."""
    return sum(forward_flops(spec, vocab, n, n) for n in lengths)


def sampling_flops(
    spec: ModelSpec, vocab: int, prompt_lengths: Iterable[int], new_tokens: Iterable[int]
) -> int:
    """FLOPs of sampling with a KV cache: each prompt's prefill (P tokens attending P), then
    one token at a time, the k-th new token attending P + k positions (k = 1..new - 1: the last
    sampled token is never fed back)."""
    total = 0
    for p, n in zip(prompt_lengths, new_tokens, strict=True):
        total += forward_flops(spec, vocab, p, p)
        total += sum(forward_flops(spec, vocab, 1, p + k) for k in range(1, n))
    return total
