"""The minibatch loop shared by SFT and reward-model training: shuffle, step, clip, schedule."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from rewardlab.common.lazy import torch
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
    on_epoch: Callable[[int], bool] | None = None,
) -> list[float]:
    """Minimise ``loss_of(indices)`` over `epochs` shuffled passes of `n` examples.

    AdamW (weight decay 0.01, fused), gradient norm clipped at 1, cosine decay of the learning rate to 0
    over all steps, after a linear warm-up over the first 5% of steps when `warmup`. After each
    epoch e (0-based), ``on_epoch(e)`` is called with the model in eval mode; True stops training
    (early stopping). The model is left in eval mode. Returns the loss of every step.
    """
    steps = epochs * math.ceil(n / batch_size)
    if steps == 0:  # epochs = 0: take the model as it is
        model.eval()
        return []
    # the fused kernel (as transformers' Trainer uses by default): one op for all parameters
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, fused=True)
    if warmup:
        w = max(1, steps // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt,
            lambda s: min(1.0, (s + 1) / w) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)),
        )
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    losses: list[float] = []
    pbar = bar(total=steps, desc=desc, enabled=progress)
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            loss = loss_of(order[start : start + batch_size])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            pbar.update()
            pbar.set_postfix(loss=f"{loss.item():.3f}")
        if on_epoch is not None:
            model.eval()
            if on_epoch(epoch):
                break
    pbar.close()
    model.eval()
    return losses
