"""The reward server's cost over calling the same reward in process: `rewardlab serve-reward`
answering OpenRLHF-shaped requests (`requests.post(url, json=...)`, as OpenRLHF's client does)
vs `LearnedReward(...)(prompts, completions)` on the same samples, alternating, median of
`--repeats`. The last line reads

    ratios serve_reward_vs_in_process=X (batch B) ms_per_request=... ms_in_process=...

    python benchmarks/bench_reward_server.py [--batch 256] [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from rewardlab.config import StudyConfig
from rewardlab.integrations.runs import load_run_rewards
from rewardlab.study import run_study


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=20)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    cfg = StudyConfig.model_validate(dict(
        study="bench-serve", cache_dir=str(tmp / "cache"), task={"name": "topics"},
        policy={"model": {"n_layer": 2, "n_embd": 64, "n_head": 4}, "train_prompts": 500, "epochs": 1},
        preferences={"prompts": 200}, pool={"prompts": 16, "n": 64},
        rewards=[{"name": "rm", "kind": "learned", "model": {"n_layer": 2, "n_embd": 64, "n_head": 4}, "epochs": 1}],
        optimizers=[{"kind": "bon", "n_boot": 10}],
    ))  # fmt: skip
    run = tmp / "run"
    run_study(cfg, run, log=lambda _: None)
    pool = pd.read_parquet(run / "stages" / "scores" / "scores.parquet").head(a.batch)
    prompts, comps = pool.prompt.tolist(), pool.completion.tolist()
    body = {"query": [p + " " + c for p, c in zip(prompts, comps, strict=True)], "prompts": prompts}
    fn = load_run_rewards(run).get("rm").fn
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "rewardlab.cli", "serve-reward", str(run), "rm",
                             "--port", str(port)], env={**os.environ, "REWARDLAB_PROGRESS": "off"},
                            stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                requests.get(url + "/health", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        served, local = [], []
        for _ in range(3):  # warm-up
            requests.post(url + "/get_reward", json=body, timeout=60)
            fn(prompts, comps)
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            r = requests.post(url + "/get_reward", json=body, headers={"Content-Type": "application/json"},
                              timeout=60)  # fmt: skip
            served.append(time.perf_counter() - t0)
            assert r.status_code == 200
            t0 = time.perf_counter()
            fn(prompts, comps)
            local.append(time.perf_counter() - t0)
    finally:
        proc.terminate()
        proc.wait(10)
    ms_s, ms_l = 1e3 * np.median(served), 1e3 * np.median(local)
    print(f"ratios serve_reward_vs_in_process={ms_s / ms_l:.2f} (batch {a.batch}) "
          f"ms_per_request={ms_s:.1f} ms_in_process={ms_l:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
