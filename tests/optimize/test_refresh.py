"""Refreshing a learned reward during RL: provenance of the data, a different model, resume."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from transformers import AutoModelForCausalLM

from rewardlab.config import StudyConfig
from rewardlab.errors import RewardLabError
from rewardlab.models import load_tokenizer
from rewardlab.optimize.refresh import draw
from rewardlab.rewards import guard as guard_mod
from rewardlab.rewards.learned import LearnedReward
from rewardlab.study import run_study
from tests.conftest import tiny_config_dict

RL = dict(kind="grpo", steps=4, measure_every=2, prompts_per_step=2, generations=4, lr=1e-2,
          measure_prompts=2, measure_samples=4, rewards=["rm-a"], refresh_every=2,
          refresh_prompts=3, refresh_samples=4)  # fmt: skip


def _config(tmp_path, cache="cache", **rl):
    d = tiny_config_dict(tmp_path)
    d["cache_dir"] = str(tmp_path / cache)
    d["optimizers"].append({**RL, **rl})
    return StudyConfig.model_validate(d)


def test_the_refreshed_reward_is_trained_on_the_policys_samples_of_that_step(tmp_path):
    cfg = _config(tmp_path)
    s = run_study(cfg, tmp_path / "run", log=lambda m: None)
    rl = s.stages["grpo-rm-a"].path
    (entry,) = json.loads((rl / "refresh.json").read_text())  # one refresh: step 2 of 4
    assert entry["step"] == 2 and entry["samples"] == 12 and entry["gold_calls"] == 12
    samples = pd.read_parquet(rl / "refresh_samples.parquet")
    assert (samples.step == 2).all() and len(samples) == 12

    # provenance: the policy checkpointed at step 2 draws exactly these samples again
    task, tok = cfg.task.load(), load_tokenizer(s.stages["policy"].path)
    at2 = AutoModelForCausalLM.from_pretrained(rl / "checkpoints" / "step-00002")
    base = AutoModelForCausalLM.from_pretrained(s.stages["policy"].path)
    prompts = list(dict.fromkeys(samples.prompt))
    kw = dict(prompts=prompts, samples=4, limit=task.max_new_tokens, temperature=1.0,
              seed=cfg.seed, step=2)  # fmt: skip
    again = draw(at2, tok, task, **kw)
    pd.testing.assert_frame_equal(again[samples.columns], samples, check_dtype=False)
    assert not draw(base, tok, task, **kw).completion.equals(samples.completion)  # not the base's
    assert np.allclose(
        samples.gold, task.gold(samples.prompt.tolist(), samples.completion.tolist())
    )

    # the refreshed model was trained on pairs of those samples, and it is another model
    refreshed = Path(entry["path"])
    pairs = pd.read_parquet(refreshed / "refresh_pairs.parquet")
    assert len(pairs) >= 1
    by = {(r.prompt, r.completion): r.gold for r in samples.itertuples()}
    for r in pairs.itertuples():
        assert (
            by[(r.prompt, r.chosen)] == r.gold_chosen
            and by[(r.prompt, r.rejected)] == r.gold_rejected
        )
    old = LearnedReward(s.stages["rm-rm-a"].path)(
        samples.prompt.tolist(), samples.completion.tolist()
    )
    new = LearnedReward(refreshed)(samples.prompt.tolist(), samples.completion.tolist())
    assert not np.allclose(old, new)
    assert refreshed != s.stages["rm-rm-a"].path
    assert (tmp_path / "run" / "stages" / "grpo-rm-a-refresh-2" / "refresh_pairs.parquet").is_file()


def test_a_killed_refreshing_run_resumes_with_the_refreshed_reward(tmp_path, monkeypatch):
    ref = run_study(_config(tmp_path, "cache-a", measure_samples=3), tmp_path / "a",
                    log=lambda m: None)  # fmt: skip
    calls = {"n": 0}
    real = guard_mod.GuardedReward.__call__

    def dies_in_step_three(self, prompts, completions, **kw):
        calls["n"] += len(prompts) == 8  # a training step's batch (2 prompts x 4)
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, prompts, completions, **kw)

    cfg = _config(tmp_path, "cache-b", measure_samples=3)  # measurements score 6, steps 8
    monkeypatch.setattr(guard_mod.GuardedReward, "__call__", dies_in_step_three)
    with pytest.raises(KeyboardInterrupt):
        run_study(cfg, tmp_path / "b", log=lambda m: None)
    (partial,) = (tmp_path / "cache-b").glob("rl-*.partial")
    assert [e["step"] for e in json.loads((partial / "refresh.json").read_text())] == [2]
    assert (partial / "trainer" / "checkpoint-2").is_dir()  # killed in step 3, after the refresh
    monkeypatch.setattr(guard_mod.GuardedReward, "__call__", real)
    s = run_study(cfg, tmp_path / "b", log=lambda m: None)
    assert "grpo-rm-a" in {k for k, r in s.stages.items() if r.built}
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "b" / "curves.csv"), pd.read_csv(tmp_path / "a" / "curves.csv")
    )
    assert ref.stages["grpo-rm-a"].path.name == s.stages["grpo-rm-a"].path.name


def test_bad_refresh_settings_are_clear_errors(tmp_path):
    with pytest.raises(RewardLabError, match="refresh_every=4 is not shorter than the run"):
        import yaml

        from rewardlab.config import load_config

        d = tiny_config_dict(tmp_path)
        d["optimizers"].append({**RL, "refresh_every": 4})
        (tmp_path / "s.yaml").write_text(yaml.safe_dump(d))
        load_config(tmp_path / "s.yaml")
    cfg = _config(tmp_path, rewards=["rule"])
    with pytest.raises(RewardLabError, match=r"\['rule'\] cannot be retrained"):
        run_study(cfg, tmp_path / "run", log=lambda m: None)
