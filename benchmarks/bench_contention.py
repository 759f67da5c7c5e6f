"""Two lab processes on the same cores: each one's time beside the time of one alone, with
OpenMP's default waiting and with the lab's (passive, set when rewardlab is imported).

The work is one epoch pair of SFT (2 epochs) of the default study's policy size on 2,000
`topics` demonstrations. Each configuration runs in fresh processes (the wait policy is read
when torch loads); configurations alternate, median of `--repeats`.
    python benchmarks/bench_contention.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

WORK = """
import time, {first}
import numpy as np, torch
from rewardlab.models import build_causal_lm
from rewardlab.policy import train_sft
from rewardlab.specs import ModelSpec
from rewardlab.tasks import build_tokenizer, load_task
task = load_task("topics"); tok = build_tokenizer(task.vocab)
rng = np.random.default_rng(0); p = task.prompts(2000, rng); d = task.demonstrations(p, 0.3, rng)
torch.manual_seed(0); m = build_causal_lm(ModelSpec(n_layer=2, n_embd=64, n_head=4), tok)
t = time.perf_counter()
train_sft(m, tok, p, d, epochs=2, lr=3e-3, batch_size=64, rng=rng, progress=False)
print(time.perf_counter() - t)
"""


POLICIES = {  # name -> (module imported first, extra environment)
    "default": ("torch", {}),  # OpenMP's own waiting: spin, then sleep
    "spin-10k": ("torch", {"GOMP_SPINCOUNT": "10000"}),  # a short spin, then sleep
    "lab": ("rewardlab", {}),  # what importing rewardlab first sets
}


def run(processes: int, policy: str) -> list[float]:
    """Seconds of each of `processes` workers started together under `policy`."""
    first, extra = POLICIES[policy]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))} | extra
    code = WORK.format(first=first)
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(processes)]  # fmt: skip
    return [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cases = [(n, pol) for pol in POLICIES for n in (1, 2)]
    times: dict = {c: [] for c in cases}
    for _ in range(args.repeats):
        for c in cases:
            times[c] += run(*c)
            print(c, times[c][-c[0] :], flush=True)
    rows = []
    for pol in POLICIES:
        alone, two = statistics.median(times[(1, pol)]), statistics.median(times[(2, pol)])
        rows.append(f"| {pol} | {alone:.2f} | {two:.2f} | {two / alone:.2f} |")
    print("| waiting | alone s | each of two at once s | ratio |\n| --- | ---: | ---: | ---: |")
    print("\n".join(rows))
    out = Path(__file__).parent / "results" / "contention.csv"
    with out.open("w") as f:
        f.write("policy,processes,seconds\n")
        for (n, pol), ts in times.items():
            f.writelines(f"{pol},{n},{t:.3f}\n" for t in ts)


if __name__ == "__main__":
    main()
