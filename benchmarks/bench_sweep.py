"""Time a sweep from an empty cache and split its time across stages.

python benchmarks/bench_sweep.py studies/gao-scaling.yaml            # run it, then summarise
python benchmarks/bench_sweep.py studies/gao-scaling.yaml --from runs/gao-scaling --wall 2460

The split adds up the seconds of every stage each study built (`done.json`), by kind of stage;
with 2 workers the stage seconds sum to about twice the wall time. Writes
benchmarks/results/sweep-<name>.csv.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from rewardlab.sweep import load_sweep, run_sweep


def kind(label: str) -> str:
    """A stage label of a run folder -> its kind (rm-rm-m1 -> reward model, rl-rule -> rl rule)."""
    if label.startswith("rm-"):
        return "reward model"
    if label.startswith("rl-"):
        return "rl (rule)" if label == "rl-rule" else "rl (learned reward)"
    return label


def split(folder: Path) -> pd.DataFrame:
    rows = []
    for done in sorted(folder.glob("studies/*/done.json")):
        for label, sec in json.loads(done.read_text()).get("built", {}).items():
            rows.append(dict(study=done.parent.name, stage=kind(label), seconds=sec))
    df = pd.DataFrame(rows)
    return (
        df.groupby("stage")
        .agg(built=("seconds", "size"), seconds=("seconds", "sum"))
        .sort_values("seconds", ascending=False)
        .reset_index()
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sweep")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--from", dest="folder", default=None, help="a finished sweep folder")
    ap.add_argument("--wall", type=float, default=None, help="its wall time, seconds")
    ap.add_argument("--keep", action="store_true", help="keep the sweep folder (path printed)")
    args = ap.parse_args()
    cfg = load_sweep(args.sweep)
    if args.folder:
        folder, wall = Path(args.folder), args.wall
    else:
        tmp = Path(tempfile.mkdtemp())
        cfg.cache_dir = str(tmp / "cache")
        t0 = time.perf_counter()
        folder = run_sweep(cfg, tmp / cfg.sweep, workers=args.workers)
        wall = time.perf_counter() - t0
    table = split(folder)
    table.loc[len(table)] = dict(stage="wall time", built=len(list(folder.glob("studies/*"))),
                                 seconds=wall)  # fmt: skip
    out = Path("benchmarks/results") / f"sweep-{cfg.sweep}.csv"
    table.to_csv(out, index=False)
    print(table.to_string(index=False))
    if args.keep:
        print(f"sweep folder: {folder}")
    elif not args.folder:
        shutil.rmtree(folder.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
