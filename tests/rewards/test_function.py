import json
import multiprocessing as mp
import os
import threading

import pandas as pd
import pytest

from rewardlab.config import StudyConfig
from rewardlab.errors import RewardLabError
from rewardlab.rewards.function import FunctionReward
from rewardlab.rewards.guard import GuardedReward
from rewardlab.study import run_study
from tests.conftest import tiny_config_dict

REWARD = '''
import json, os

def reward(prompts, completions, answer, **kw):
    """Exact match with the sorted digits; refuses to work without the dataset column."""
    for p, a in zip(prompts, answer, strict=True):
        if a != " ".join(sorted(p.split()[1:-1])):
            raise ValueError(f"column answer {a!r} does not belong to prompt {p!r}")
    if "completion_ids" in kw and "trainer_state" not in kw:
        raise ValueError("TRL's keyword arguments came only in part")
    with open(LOG, "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "keys": sorted(kw), "n": len(prompts)}) + "\\n")
    return [float(c.split() == a.split()) for c, a in zip(completions, answer, strict=True)]
'''


def test_a_function_reward_runs_in_best_of_n_and_grpo_with_columns_and_trl_kwargs(tmp_path):
    log = tmp_path / "calls.jsonl"
    (tmp_path / "my_reward.py").write_text(f"LOG = {str(log)!r}\n" + REWARD)
    d = tiny_config_dict(tmp_path)
    d["rewards"] = [{"name": "mine", "kind": "function", "path": str(tmp_path / "my_reward.py")}]
    d["optimizers"].append({"kind": "grpo", "rewards": ["mine"], "steps": 2, "measure_every": 2,
                            "prompts_per_step": 2, "generations": 4, "measure_prompts": 2,
                            "measure_samples": 4})  # fmt: skip
    s = run_study(StudyConfig.model_validate(d), tmp_path / "run", log=lambda m: None)
    calls = [json.loads(x) for x in log.read_text().splitlines()]
    assert all(c["pid"] != os.getpid() for c in calls)  # ran in its own process
    trl_calls = [c for c in calls if "trainer_state" in c["keys"]]
    assert len(trl_calls) == 2  # one per GRPO step, each with TRL's arguments
    assert {"completion_ids", "trainer_state"} <= set(trl_calls[0]["keys"])
    assert trl_calls[0]["n"] == 2 * 4
    curves = pd.read_csv(tmp_path / "run" / "curves.csv")
    assert {("bon", "mine"), ("grpo", "mine")} <= set(
        zip(curves.optimizer, curves.reward, strict=False)
    )
    # best-of-1 proxy = the mean exact-match rate of the pool, counted here from the pool itself
    pool = pd.read_parquet(s.stages["pool-bon"].path / "pool.parquet")
    exact = [
        c.split() == sorted(p.split()[1:-1])
        for p, c in zip(pool.prompt, pool.completion, strict=True)
    ]
    bon1 = curves[(curves.optimizer == "bon") & (curves.reward == "mine") & (curves.step == 1)]
    assert bon1.proxy_raw.iloc[0] == pytest.approx(sum(exact) / len(exact))
    table = pd.read_csv(tmp_path / "run" / "rewards.csv").set_index("reward")
    assert table.loc["mine", "kind"] == "function" and bool(table.loc["mine", "isolated"])

    # editing the file is a new reward: the scores are recomputed, not taken from the cache
    (tmp_path / "my_reward.py").write_text(f"LOG = {str(log)!r}\n" + REWARD + "\n# edited\n")
    d["optimizers"] = d["optimizers"][:1]
    s2 = run_study(StudyConfig.model_validate(d), tmp_path / "run2", log=lambda m: None)
    assert s2.stages["scores"].built and not s2.stages["policy"].built


def test_a_hung_reward_is_stopped_with_its_process(tmp_path):
    (tmp_path / "slow.py").write_text("import time\ndef reward(p, c, **kw):\n    time.sleep(30)\n")
    threads = threading.active_count()
    g = GuardedReward(FunctionReward(str(tmp_path / "slow.py")), "slow", timeout_s=3, isolate=True)
    for _ in range(2):  # a second hang starts and stops a fresh process
        with pytest.raises(
            RewardLabError, match=r"reward 'slow' did not return within 3 s.*stopped"
        ):
            g(["p"], ["x"])
        assert mp.active_children() == []  # nothing is left running
    assert threading.active_count() == threads  # and no abandoned thread


def test_a_missing_reward_file_or_function_is_named(tmp_path):
    with pytest.raises(RewardLabError, match="does not exist"):
        FunctionReward(str(tmp_path / "nope.py"))
    (tmp_path / "f.py").write_text("x = 1\n")
    with pytest.raises(RewardLabError, match="no callable named 'reward'"):
        FunctionReward(str(tmp_path / "f.py"))
