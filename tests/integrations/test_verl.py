"""compute_score called as verl calls a custom reward function: the module loaded from its file
path, the function wrapped with the config's reward_kwargs, then called with keywords."""

import functools
import importlib.util

import numpy as np
import pandas as pd
import pytest

import rewardlab.integrations.verl as verl_module
from rewardlab.errors import RewardLabError
from rewardlab.tasks import load_task


def custom_reward_fn(name: str, reward_kwargs: dict):
    """What verl's get_custom_reward_fn does with custom_reward_function.{path,name,reward_kwargs}."""
    spec = importlib.util.spec_from_file_location("custom_module", verl_module.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return functools.partial(getattr(module, name), **reward_kwargs)


@pytest.fixture(scope="module")
def pool(finished_run):
    return pd.read_parquet(finished_run / "stages" / "scores" / "scores.parquet").head(12)


def test_naive_manager_calls_score_one_sample_each(finished_run, pool):
    fn = custom_reward_fn(
        "compute_score", {"run": str(finished_run), "reward": "rm-b/min", "log": ["rule"]}
    )
    got = [
        fn(data_source="rewardlab/sorting", solution_str=" " + c + "\n", ground_truth=None,
           extra_info={"prompt": p, "index": i})
        for i, (p, c) in enumerate(zip(pool.prompt, pool.completion, strict=True))
    ]  # fmt: skip
    np.testing.assert_allclose([g["score"] for g in got], pool["rm-b/min"], rtol=1e-5, atol=1e-6)
    task = load_task("sorting", {"min_len": 3, "max_len": 4})
    gold = task.gold(pool.prompt.tolist(), pool.completion.tolist())
    np.testing.assert_allclose([g["rule"] for g in got], gold)
    m0, m1 = (np.array([g[f"rm-b/min/member{j}"] for g in got]) for j in (0, 1))
    np.testing.assert_allclose(np.minimum(m0, m1), pool["rm-b/min"], rtol=1e-5, atol=1e-6)


def test_batch_manager_scores_a_batch(finished_run, pool):
    fn = custom_reward_fn("compute_score_batch", {"run": str(finished_run), "reward": "asc"})
    got = fn(data_sources=["s"] * len(pool), solution_strs=pool.completion.tolist(),
             ground_truths=[None] * len(pool), extra_infos=[{"prompt": p} for p in pool.prompt])  # fmt: skip
    np.testing.assert_allclose([g["score"] for g in got], pool["asc"])


def test_bad_settings_are_clear_errors(finished_run):
    fn = custom_reward_fn("compute_score", {"run": str(finished_run), "reward": "rm-a"})
    with pytest.raises(RewardLabError, match=r"prompt as a string in extra_info\['prompt'\]"):
        fn(data_source="s", solution_str="1 2", ground_truth=None, extra_info={"question": "q"})
    with pytest.raises(RewardLabError, match="reward_kwargs.run"):
        custom_reward_fn("compute_score", {})(data_source="s", solution_str="1", ground_truth=None)
    fn = custom_reward_fn("compute_score", {"run": str(finished_run), "reward": "nope"})
    with pytest.raises(RewardLabError, match="no reward 'nope'"):
        fn(data_source="s", solution_str="1", ground_truth=None, extra_info={"prompt": "p"})
