"""A reward kind and a sample-based optimizer added in a test's own files (tests/kinds/), without
touching the package: their configs join the study's unions (`config.study_config`) and the
study runs them beside the package's own kinds."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import tiny_config_dict

from rewardlab.config import study_config
from rewardlab.optimize import KINDS as OPTIMIZERS
from rewardlab.rewards import KINDS as REWARDS
from rewardlab.study import run_study

HERE = Path(__file__).parent / "kinds"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"toy_kinds_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as any imported module is: the study finds it by its config
    spec.loader.exec_module(module)
    return module


def test_a_toy_reward_kind_and_a_toy_optimizer_run_in_a_study(tmp_path):
    length, top_k = _load("toy_length"), _load("toy_top_k")
    Study = study_config({**REWARDS, "toy_length": length}, {**OPTIMIZERS, "toy_top_k": top_k})
    data = tiny_config_dict(tmp_path)
    data["rewards"] = [{"name": "short", "kind": "toy_length", "target": 2}]
    data["optimizers"] = [{"kind": "toy_top_k", "ks": [1, 4, 16]}, {"kind": "bon", "n_boot": 0}]
    cfg = Study.model_validate(data)
    study = run_study(cfg, tmp_path / "run", log=lambda _: None)

    scores = pd.read_parquet(tmp_path / "run" / "stages" / "scores" / "scores.parquet")
    words = scores.completion.str.split().str.len()
    assert np.allclose(scores.short, -(words - 2).abs())  # the toy reward scored the pool

    curves = pd.read_csv(tmp_path / "run" / "curves.csv")
    assert list(dict.fromkeys(curves.optimizer)) == ["toy_top_k", "bon"]  # in config order
    assert set(curves[curves.optimizer == "toy_top_k"].family) == {"sample"}
    # top-16 of a pool of 16 is the whole pool: its gold is the pool's mean, 0 in std units
    whole = curves[(curves.optimizer == "toy_top_k") & (curves.step == 16)]
    assert np.allclose(whole.gold, 0.0, atol=1e-9) and np.allclose(whole.kl, 0.0)
    # the rule's top-1 is each prompt's best gold, by hand from the pool
    s = scores.sort_values(["prompt_id", "sample_id"])
    g = s.gold.to_numpy().reshape(s.prompt_id.nunique(), -1)
    best = ((g.max(1) - g.mean()) / g.std()).mean()
    rule1 = curves[
        (curves.optimizer == "toy_top_k") & (curves.reward == "rule") & (curves.step == 1)
    ]
    assert np.isclose(rule1.gold.iloc[0], best)
    assert {"toy_top_k", "bon"} <= set(study.summary.optimizer)
    assert (tmp_path / "run" / "report.html").is_file()
