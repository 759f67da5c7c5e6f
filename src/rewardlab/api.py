"""The documented Python API: run a study given as a path, a dict or a config, with dotted-key
overrides, and reopen a finished run folder; both give a `Study` whose tables are DataFrames.

    import rewardlab
    s = rewardlab.run("studies/tiny.yaml", overrides={"seed": 1}, out="runs/tiny-s1")
    s.summary, s.curves, s.measurements   # the run folder's CSV files, as DataFrames
    again = rewardlab.load("runs/tiny-s1")
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from rewardlab.common.config_io import set_key
from rewardlab.config import StudyConfig, find_study, read_study, run_config, validated
from rewardlab.errors import RewardLabError
from rewardlab.seeds import VERDICTS, run_seeds
from rewardlab.study import Study, run_study


def resolve(study: str | Path | Mapping | StudyConfig, overrides: Mapping[str, Any] | None = None
            ) -> StudyConfig:  # fmt: skip
    """The validated config of `study` (a YAML path or a packaged study's name, a mapping or a
    `StudyConfig`; relative input paths in a file are relative to it) with `overrides` (dotted keys, e.g. ``{"policy.epochs": 2, "rewards.0.lr": 1e-3}``) applied."""
    if isinstance(study, StudyConfig):
        data, source = study.model_dump(mode="json"), "the given StudyConfig"
    elif isinstance(study, Mapping):
        data, source = copy.deepcopy(dict(study)), "the given mapping"
    else:
        data, source = read_study(find_study(study)), str(study)
    for key, value in (overrides or {}).items():
        set_key(data, key, copy.deepcopy(value), f"{source}, override {key}")
    if overrides:
        source += " with overrides " + ", ".join(overrides)
    return validated(data, source)


def run(
    study: str | Path | Mapping | StudyConfig,
    overrides: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> Study:
    """Run (or resume) a study into `out` (default ``runs/<study>__s<seed>__<time>__<hex>``)
    and return it reopened from its folder (`load`). A study with ``seeds`` runs them side by
    side in one folder (`rewardlab.seeds`)."""
    cfg = resolve(study, overrides)
    runner = run_seeds if cfg.seeds else run_study
    done = runner(cfg, Path(out) if out is not None else None, log=log)
    return load(done.run_dir)


def load(run_dir: str | Path) -> Study:
    """A finished run folder as a `Study`: `config` from its ``config.yaml``, `summary`,
    `reward_models` (and, of several seeds, `verdicts`) from its CSV files; `curves`,
    `measurements` and `report_path` read on use.

    Raises:
        RewardLabError: the folder is not a finished run (no ``config.yaml`` or ``summary.csv``).
    """
    run_dir = Path(run_dir)
    for name in ("config.yaml", "summary.csv"):
        if not (run_dir / name).is_file():
            raise RewardLabError(f"{run_dir} is not a finished run folder (it has no {name})")
    study = Study(run_dir, run_config(run_dir))
    study.summary = pd.read_csv(run_dir / "summary.csv")
    if (run_dir / "reward_models.csv").is_file():
        study.reward_models = pd.read_csv(run_dir / "reward_models.csv")
    if (run_dir / VERDICTS).is_file():
        study.verdicts = pd.read_csv(run_dir / VERDICTS)
    return study
