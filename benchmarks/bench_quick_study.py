"""Time the default study (`make run`, set-up excluded) from an empty cache, stage by stage.

python benchmarks/bench_quick_study.py [--repeats 1] [--config studies/quick.yaml]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from rewardlab.config import load_config
from rewardlab.study import run_study


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--config", default="studies/quick.yaml")
    ap.add_argument("--out", default="benchmarks/results/quick_study.csv")
    args = ap.parse_args()
    rows, totals = [], []
    for r in range(args.repeats):
        tmp = Path(tempfile.mkdtemp())
        cfg = load_config(args.config, [f"cache_dir={tmp / 'cache'}"])
        t0 = time.perf_counter()
        study = run_study(cfg, tmp / "run", log=lambda m: None)
        total = time.perf_counter() - t0
        totals.append(total)
        for label, res in study.stages.items():
            rows.append(dict(repeat=r, stage=label, seconds=res.seconds))
        rows.append(
            dict(
                repeat=r,
                stage="best-of-n + report",
                seconds=total - sum(s.seconds for s in study.stages.values()),
            )
        )
        rows.append(dict(repeat=r, stage="TOTAL", seconds=total))
        shutil.rmtree(tmp)
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    med = df.groupby("stage", sort=False).seconds.median()
    print(med.to_string(float_format=lambda v: f"{v:.1f}"))
    print(f"median total over {args.repeats} run(s): {statistics.median(totals):.1f} s")


if __name__ == "__main__":
    main()
