"""Probe what limits a reward model's accuracy: train sizes on one study's preference pairs with
held-out early stopping and print train / held-out accuracy by gold-margin bin.

    python examples/rm_convergence_probe.py studies/quick.yaml --prompts 4000 --patience 10 \
        --size 1,8,2,3e-3 --size 2,16,2,3e-3 --size 2,64,4,3e-3 --out probe.csv

(`rewardlab reproduce docs/results/rm-probe` runs the sizes of RESULTS.md.)

Each ``--size`` is ``n_layer,n_embd,n_head,lr[,batch_size]``. The policy, preference pool and
pairs come from the study's stage cache (built when missing), with ``preferences.prompts`` set to
``--prompts`` and the seed to ``--seed``; each size is trained by the study's own reward-model
stage (`rewards.learned.stage_reward_model`, member 0), cached like a study's, so a killed probe
resumes at the size it was training. With ``--out``, the rows so far go to that CSV after each
size, and the record of what made them to ``provenance.json`` beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd
import torch

from rewardlab.cache import Cache
from rewardlab.config import load_config
from rewardlab.policy import stage_policy
from rewardlab.pool import stage_pool
from rewardlab.preferences import stage_preferences
from rewardlab.provenance import write_provenance
from rewardlab.rewards.learned import Config as LearnedConfig
from rewardlab.rewards.learned import stage_reward_model
from rewardlab.specs import ModelSpec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("--prompts", type=int, default=4000, help="preferences.prompts")
    ap.add_argument("--min-margin", type=float, default=0.0, help="preferences.min_margin")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=60, help="the most epochs")
    ap.add_argument("--patience", type=int, default=10, help="0: no early stopping")
    ap.add_argument("--size", action="append", required=True, help="n_layer,n_embd,n_head,lr[,bs]")
    ap.add_argument("--out", default=None, help="CSV of the rows printed")
    args = ap.parse_args()
    t0 = time.perf_counter()
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    overrides = [f"seed={args.seed}", f"preferences.prompts={args.prompts}",
                 f"preferences.min_margin={args.min_margin}"]  # fmt: skip
    cfg = load_config(args.config, overrides)
    cache = Cache(cfg.cache_dir, log=lambda m: None)
    pol = cache.run("policy", stage_policy, cfg=cfg.policy, task_cfg=cfg.task, seed=cfg.seed,
                    device="cpu")  # fmt: skip
    pc = cfg.preferences
    pool = cache.run("pool", stage_pool, sampling=cfg.sampling, task_cfg=cfg.task, policy=pol,
                     split="preferences", n_prompts=pc.prompts, n_samples=pc.samples_per_prompt,
                     seed=cfg.seed)  # fmt: skip
    prefs = cache.run("preferences", stage_preferences, cfg=pc, pool=pool, seed=cfg.seed)
    rows = []
    for spec in args.size:
        parts = spec.split(",")
        layers, width, heads = (int(v) for v in parts[:3])
        rm = LearnedConfig(name="probe", model=ModelSpec(n_layer=layers, n_embd=width, n_head=heads),
                           epochs=args.epochs, lr=float(parts[3]),
                           batch_size=int(parts[4]) if len(parts) > 4 else 64,
                           patience=args.patience or None)  # fmt: skip
        # the study's own reward-model stage, cached: a killed probe resumes at the next size
        res = cache.run("reward_model", stage_reward_model, cfg=rm.training(), member=0,
                        task_cfg=cfg.task, preferences=prefs, policy=None, seed=cfg.seed,
                        device="cpu")  # fmt: skip
        met = json.loads((res.path / "metrics.json").read_text())
        met.pop("history")
        row = dict(model=f"{layers}x{width}x{heads}", lr=rm.lr, batch_size=rm.batch_size, **met)
        rows.append(row)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))
        if args.out:  # after every size, so that what is finished is kept
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(args.out, index=False)
            write_provenance(Path(args.out).parent, config_text=cfg.model_dump_json(),
                             seeds=[cfg.seed], seconds=time.perf_counter() - t0)  # fmt: skip


if __name__ == "__main__":
    main()
