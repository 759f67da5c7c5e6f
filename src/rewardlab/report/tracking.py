"""Sends a finished run's measurements to TensorBoard and Weights & Biases (both optional, off by
default), read from the run folder's own files so that cached stages are logged too.

Names, with CleanRL-style prefixes and gold kept apart from the proxy: ``gold/<optimizer>/<reward>``,
``proxy/<optimizer>/<reward>``, ``kl/<optimizer>/<reward>`` (nats) at step = best-of-n's n or a
trained optimizer's step; ``train/<stage>/<key>`` for what a trainer logged (loss, its own reward
means, ...); ``reward_model/<stage>/test_accuracy`` at step 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from rewardlab.errors import RewardLabError
from rewardlab.specs import TrackingConfig


def scalars(run_dir: Path) -> Iterator[tuple[str, int, float]]:
    """Every (name, step, value) of the run folder `run_dir`, in the order written."""
    curves = pd.read_csv(run_dir / "curves.csv")
    for (opt, reward), c in curves.groupby(["optimizer", "reward"], sort=False):
        for row in c.sort_values("step").itertuples():
            for what in ("gold", "proxy", "kl"):
                v = float(getattr(row, what))
                if math.isfinite(v):
                    yield f"{what}/{opt}/{reward}", int(row.step), v
    for log in sorted((run_dir / "stages").glob("*/trainer_log.json")):
        for entry in json.loads(log.read_text()):
            step = entry.get("step")
            for k, v in entry.items():
                if k != "step" and isinstance(v, int | float) and not isinstance(v, bool):
                    if step is not None and math.isfinite(v):
                        yield f"train/{log.parent.name}/{k}", int(step), float(v)
    rms = run_dir / "reward_models.csv"
    if rms.is_file():
        for row in pd.read_csv(rms).itertuples():
            yield f"reward_model/{row.stage}/test_accuracy", 0, float(row.test_accuracy)


def track(run_dir: Path, cfg: TrackingConfig, config: dict) -> list[str]:
    """Send the run's `scalars` where `cfg` says (`config`: the resolved study config, given to
    W&B as the run's config); returns what was written, for the log.

    Raises:
        RewardLabError: a sink was asked for and its package is not installed.
    """
    done = []
    if cfg.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise RewardLabError(
                "tracking.tensorboard needs the tensorboard package: pip install 'rewardlab[track]'"
            ) from None
        folder = run_dir / "tensorboard"
        with SummaryWriter(log_dir=str(folder)) as w:
            for name, step, value in scalars(run_dir):
                w.add_scalar(name, value, step)
        done.append(f"TensorBoard events in {folder} (tensorboard --logdir {folder})")
    if cfg.wandb:
        try:
            import wandb
        except ImportError:
            raise RewardLabError(
                "tracking.wandb needs the wandb package: pip install 'rewardlab[track]'"
            ) from None
        run = wandb.init(project=cfg.wandb_project, name=run_dir.name, dir=str(run_dir),
                         mode=cfg.wandb_mode, config=config, reinit="finish_previous")  # fmt: skip
        by_series: dict[str, list[tuple[int, float]]] = {}
        for name, step, value in scalars(run_dir):
            by_series.setdefault(name, []).append((step, value))
        for name, points in by_series.items():  # each series on its own step axis
            axis = f"{name}/step"
            run.define_metric(axis, hidden=True)
            run.define_metric(name, step_metric=axis)
            for step, value in points:
                run.log({axis: step, name: value})
        run.finish()
        wandb.teardown()  # waits for W&B's service to write out the whole offline log
        done.append(f"W&B run {run_dir.name} ({cfg.wandb_mode}) in {run_dir / 'wandb'}")
    return done
