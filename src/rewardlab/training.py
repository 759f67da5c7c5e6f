"""The minibatch loop shared by SFT and reward-model training: shuffle, step, clip, schedule."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from rewardlab.progress import bar


def minibatch_train(
    model: torch.nn.Module,
    n: int,
    loss_of: Callable[[np.ndarray], torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    rng: np.random.Generator,
    warmup: bool,
    desc: str,
    progress: bool = True,
    lengths: np.ndarray | None = None,
) -> list[float]:
    """Minimise ``loss_of(indices)`` over `epochs` shuffled passes of `n` examples.

    AdamW (weight decay 0.01), gradient norm clipped at 1, cosine decay of the learning rate to 0
    over all steps, after a linear warm-up over the first 5% of steps when `warmup`. The model is
    left in eval mode. Returns the loss of every step.

    With `lengths` (tokens of each example), batches are grouped by length (`length_batches`), so
    padding costs almost nothing; without, they are consecutive slices of the shuffled order.
    """
    steps = epochs * math.ceil(n / batch_size)
    if steps == 0:  # epochs = 0: take the model as it is
        model.eval()
        return []
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    if warmup:
        w = max(1, steps // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt,
            lambda s: min(1.0, (s + 1) / w) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)),
        )
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    model.train()
    losses: list[float] = []
    pbar = bar(total=steps, desc=desc, enabled=progress)
    for _ in range(epochs):
        order = rng.permutation(n)
        if lengths is None:
            batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
        else:
            batches = length_batches(order, lengths, batch_size, rng)
        for idx in batches:
            loss = loss_of(idx)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            pbar.update()
            pbar.set_postfix(loss=f"{loss.item():.3f}")
    pbar.close()
    model.eval()
    return losses


GROUP = 16  # batches per length-sorted group


def length_batches(
    order: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """The shuffled `order` cut into groups of GROUP x batch_size examples; each group sorted by
    length and cut into batches; the batches shuffled. Every example is in exactly one batch,
    batches hold examples of similar length, and which examples share a batch is still random
    within a length band (as `group_by_length` in transformers' Trainer)."""
    batches = []
    for g in range(0, len(order), GROUP * batch_size):
        group = order[g : g + GROUP * batch_size]
        group = group[np.argsort(lengths[group], kind="stable")]
        batches += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]
