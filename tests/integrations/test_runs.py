"""Rewards rebuilt from a run folder alone score the run's pool exactly as the run did."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from rewardlab.errors import RewardLabError
from rewardlab.integrations.runs import load_run_rewards
from rewardlab.tasks import load_task


def test_rebuilt_rewards_score_the_pool_as_the_run_did(finished_run):
    rr = load_run_rewards(finished_run)  # the cache is gone: only the run folder is read
    assert sorted(rr.rewards) == ["asc", "rm-a", "rm-b/mean", "rm-b/min", "rm-b/uwo", "rule"]
    scores = pd.read_parquet(finished_run / "stages" / "scores" / "scores.parquet")
    p, c = scores.prompt.tolist(), scores.completion.tolist()
    for name in ["rm-a", "rm-b/mean", "rm-b/min", "asc"]:
        got = rr.get(name).fn(p, c, **rr.columns(p))
        np.testing.assert_allclose(got, scores[name], rtol=1e-5, atol=1e-6)
    task = load_task("sorting", {"min_len": 3, "max_len": 4})
    np.testing.assert_allclose(rr.get("rule").fn(p, c), task.gold(p, c))
    members = rr.members("rm-b/min")
    assert len(members) == 2 and rr.members("rm-a") == []
    by_member = np.array([m(p, c) for m in members])
    np.testing.assert_allclose(by_member.min(0), scores["rm-b/min"], rtol=1e-5, atol=1e-6)


def test_a_run_is_served_under_its_own_thread_count(finished_run):
    """The stage keys hold the thread count the run was made with; a process with another
    count still finds every stage copy."""
    threads = torch.get_num_threads()
    made = json.loads((finished_run / "stages/policy/meta.json").read_text())["key"]["threads"]
    try:
        torch.set_num_threads(1 if made != 1 else 2)
        rr = load_run_rewards(finished_run)
    finally:
        torch.set_num_threads(threads)
    assert "rm-a" in rr.rewards


def test_an_unknown_reward_names_the_ones_there_are(finished_run):
    rr = load_run_rewards(finished_run)
    with pytest.raises(RewardLabError, match=r"no reward 'rm-z'; its rewards are asc, rm-a"):
        rr.get("rm-z")


def test_a_missing_stage_copy_is_an_error_not_a_retraining(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run, symlinks=True)
    label = "rm-rm-a"
    meta = json.loads((run / "stages" / label / "meta.json").read_text())
    shutil.rmtree(run / "stages" / label)
    with pytest.raises(RewardLabError, match=f"no copy of stage reward_model-{meta['hash']}"):
        load_run_rewards(run)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(RewardLabError, match="not a run folder"):
        load_run_rewards(tmp_path)
