"""Per model size: SFT, reward-model (Bradley-Terry) training and sampling, timed, with the
achieved FLOP/s as a fraction of this machine's matmul throughput measured in the same run.

FLOPs are the useful arithmetic (`rewardlab.flops`, no padding) of what each job computes: SFT
trains on the demonstrations (3x forward); the reward model trains on both sequences of each
pair and then scores them once more with the held-out pairs (accuracy and scale); sampling
draws 4 completions of each prompt with a KV cache. The limit is the median FLOP/s of a
1,024 x 1,024 float32 matmul with the same thread count. Peak resident memory of the largest
reward model's training is measured in a fresh process.
    python benchmarks/bench_training.py [--repeats 3] [--out benchmarks/results/training.csv]
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rewardlab.flops import sampling_flops, sequences_flops
from rewardlab.models import build_causal_lm, build_reward_model, count_params
from rewardlab.policy import sample_rows, train_sft
from rewardlab.rewards.learned import train_reward_model
from rewardlab.seeding import seed_everything
from rewardlab.sequences import encode, encode_prompt
from rewardlab.specs import ModelSpec
from rewardlab.tasks import build_tokenizer, load_task

SIZES = {
    "xs": ModelSpec(n_layer=1, n_embd=8, n_head=2),
    "s": ModelSpec(n_layer=2, n_embd=32, n_head=4),
    "policy": ModelSpec(n_layer=2, n_embd=64, n_head=4),
    "m": ModelSpec(n_layer=3, n_embd=96, n_head=4),
    "l": ModelSpec(n_layer=4, n_embd=192, n_head=6),
}


def matmul_flops_per_s(repeats: int = 20, n: int = 1024) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times)


def data(n: int):
    task = load_task("topics")
    tok = build_tokenizer(task.vocab)
    rng = np.random.default_rng(0)
    prompts = task.prompts(n, rng)
    demos = task.demonstrations(prompts, 0.3, rng)
    other = task.demonstrations(prompts, 0.3, rng)
    g1, g2 = np.array(task.gold(prompts, demos)), np.array(task.gold(prompts, other))
    keep = g1 != g2
    pairs = pd.DataFrame(dict(prompt=np.array(prompts)[keep],
                              chosen=np.where(g1 > g2, demos, other)[keep],
                              rejected=np.where(g1 > g2, other, demos)[keep]))  # fmt: skip
    return task, tok, rng, prompts, demos, pairs


def train_largest_rm(n: int) -> None:
    """The worker of the peak-memory measurement: one epoch of the largest reward model."""
    task, tok, rng, _, _, pairs = data(n)
    model = build_reward_model(SIZES["l"], tok)
    train_reward_model(model, tok, pairs, pairs.iloc[:0], epochs=1, lr=1e-3, batch_size=64,
                       rng=rng, progress=False)  # fmt: skip
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--out", default="benchmarks/results/training.csv")
    ap.add_argument("--peak-memory-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peak_memory_worker:
        return train_largest_rm(args.samples)
    task, tok, rng, prompts, demos, pairs = data(args.samples)
    V = len(tok)
    sft_len = encode(tok, prompts, demos).lengths
    p = pairs.prompt.tolist()
    rm_len = encode(tok, p + p, pairs.chosen.tolist() + pairs.rejected.tolist()).lengths
    prompt_len = [len(encode_prompt(tok, x)) for x in prompts for _ in range(4)]
    rows, peaks = [], []
    for name, spec in SIZES.items():
        for kind in ("sft", "reward_model", "sample"):
            times = []
            for r in range(args.repeats):
                peaks.append(matmul_flops_per_s())
                seed_everything(r, "bench")
                if kind == "sft":
                    model = build_causal_lm(spec, tok)
                    t0 = time.perf_counter()
                    train_sft(model, tok, prompts, demos, epochs=1, lr=1e-3, batch_size=64,
                              rng=rng, progress=False)  # fmt: skip
                    n, flops = len(prompts), 3 * sequences_flops(spec, V, sft_len)
                elif kind == "reward_model":
                    model = build_reward_model(spec, tok)
                    t0 = time.perf_counter()
                    train_reward_model(model, tok, pairs, pairs.iloc[:0], epochs=1, lr=1e-3,
                                       batch_size=64, rng=rng, progress=False)  # fmt: skip
                    n, flops = len(pairs), 4 * sequences_flops(spec, None, rm_len)
                else:
                    model = build_causal_lm(spec, tok).eval()
                    rows_p = [x for x in prompts for _ in range(4)]
                    u = torch.rand((len(rows_p), task.max_new_tokens))
                    t0 = time.perf_counter()
                    comps, _ = sample_rows(
                        model, tok, rows_p, u, max_new_tokens=task.max_new_tokens
                    )
                    new = [min(len(tok(c, add_special_tokens=False)["input_ids"]) + 1,
                               task.max_new_tokens) for c in comps]  # fmt: skip
                    n, flops = len(rows_p), sampling_flops(spec, V, prompt_len, new)
                times.append(time.perf_counter() - t0)
            med = statistics.median(times)
            rows.append(dict(kind=kind, size=name, params=count_params(model), examples=n,
                             median_s=med, examples_per_s=n / med, gflop=flops / 1e9,
                             gflop_per_s=flops / med / 1e9, runs=args.repeats))  # fmt: skip
            print(rows[-1], flush=True)
    peak = statistics.median(peaks)
    df = pd.DataFrame(rows)
    df["fraction_of_matmul_peak"] = df.gflop_per_s * 1e9 / peak
    df["matmul_gflop_per_s"] = peak / 1e9
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    worker = subprocess.run([sys.executable, __file__, "--peak-memory-worker", "--samples",
                             str(args.samples)], capture_output=True, text=True, check=True)  # fmt: skip
    rss_mb = int(worker.stdout.strip().splitlines()[-1]) / 1024
    print(f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; matmul {peak / 1e9:.0f} GFLOP/s; peak resident "
          f"memory of one epoch of the largest reward model: {rss_mb:.0f} MB")  # fmt: skip
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
