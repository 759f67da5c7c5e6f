"""Time each gridworld experiment (`rewardlab gridworld run`, 5 seeds, Q-learning); median of runs.

python benchmarks/bench_gridworld.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from rewardlab.gridworld.experiments import EXPERIMENTS, run_experiment


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results/gridworld.csv")
    args = ap.parse_args()
    rows = []
    for name in EXPERIMENTS:
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run_experiment(name, ["q-learning"], args.seeds, Path(tempfile.mkdtemp()))
            times.append(time.perf_counter() - t0)
        rows.append(
            dict(
                experiment=name,
                seeds=args.seeds,
                median_s=statistics.median(times),
                runs=args.repeats,
            )
        )
        print(rows[-1], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
