"""Time base-policy (SFT) training and reward-model (Bradley-Terry) training per model size.

Each measurement trains one epoch on a fixed data set and is repeated; the median is reported.
    python benchmarks/bench_training.py [--repeats 3] [--out benchmarks/results/training.csv]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rewardlab.config import ModelSpec
from rewardlab.models import build_causal_lm, build_reward_model, count_params
from rewardlab.policy import train_sft
from rewardlab.rewards.learned import train_reward_model
from rewardlab.seeding import seed_everything
from rewardlab.tasks import build_tokenizer, load_task

SIZES = {
    "xs": ModelSpec(n_layer=1, n_embd=8, n_head=2),
    "s": ModelSpec(n_layer=2, n_embd=32, n_head=4),
    "policy": ModelSpec(n_layer=2, n_embd=64, n_head=4),
    "m": ModelSpec(n_layer=3, n_embd=96, n_head=4),
    "l": ModelSpec(n_layer=4, n_embd=192, n_head=6),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--out", default="benchmarks/results/training.csv")
    args = ap.parse_args()
    task = load_task("topics")
    tok = build_tokenizer(task.vocab)
    rng = np.random.default_rng(0)
    prompts = task.prompts(args.samples, rng)
    demos = task.demonstrations(prompts, 0.3, rng)
    other = task.demonstrations(prompts, 0.3, rng)
    g1, g2 = np.array(task.gold(prompts, demos)), np.array(task.gold(prompts, other))
    keep = g1 != g2
    pairs = pd.DataFrame(
        dict(
            prompt=np.array(prompts)[keep],
            chosen=np.where(g1 > g2, demos, other)[keep],
            rejected=np.where(g1 > g2, other, demos)[keep],
        )
    )
    rows = []
    for name, spec in SIZES.items():
        for kind in ("sft", "reward_model"):
            times = []
            for r in range(args.repeats):
                seed_everything(r, "bench")
                if kind == "sft":
                    model = build_causal_lm(spec, tok)
                    t0 = time.perf_counter()
                    train_sft(
                        model,
                        tok,
                        prompts,
                        demos,
                        epochs=1,
                        lr=1e-3,
                        batch_size=64,
                        rng=rng,
                        progress=False,
                    )
                    n = len(prompts)
                else:
                    model = build_reward_model(spec, tok)
                    t0 = time.perf_counter()
                    train_reward_model(
                        model,
                        tok,
                        pairs,
                        pairs.iloc[:0],
                        epochs=1,
                        lr=1e-3,
                        batch_size=64,
                        rng=rng,
                        progress=False,
                    )
                    n = len(pairs)
                times.append(time.perf_counter() - t0)
            med = statistics.median(times)
            rows.append(
                dict(kind=kind, size=name, params=count_params(model), examples=n, median_s=med,
                     examples_per_s=n / med, runs=args.repeats)
            )  # fmt: skip
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
