"""The documented Python API: rewardlab.run and rewardlab.load on the tiny preset."""

import pandas as pd
import pytest
import yaml

import rewardlab
from rewardlab.config import StudyConfig
from rewardlab.errors import RewardLabError


def test_run_returns_the_run_folders_tables_and_load_reopens_them(tmp_path):
    out = tmp_path / "run"
    s = rewardlab.run("studies/tiny.yaml", overrides={"seed": 1, "cache_dir": str(tmp_path / "c")},
                      out=out, log=lambda m: None)  # fmt: skip
    assert s.run_dir == out and s.config.seed == 1 and s.report_path == out / "report.html"
    assert s.report_path.is_file()
    for name, frame in (("summary", s.summary), ("curves", s.curves),
                        ("measurements", s.measurements)):  # fmt: skip
        pd.testing.assert_frame_equal(frame, pd.read_csv(out / f"{name}.csv"))
    assert set(s.summary.optimizer) == {"bon", "grpo", "dpo"}
    again = rewardlab.load(out)
    assert again.config == s.config
    pd.testing.assert_frame_equal(again.summary, s.summary)
    pd.testing.assert_frame_equal(again.curves, s.curves)
    with pytest.raises(RewardLabError, match="not a finished run folder"):
        rewardlab.load(tmp_path)


def test_a_study_given_as_a_dict_or_a_config_and_bad_overrides():
    from rewardlab.api import resolve

    data = yaml.safe_load(open("studies/tiny.yaml"))
    by_dict = resolve(data, {"policy.epochs": 2, "rewards.0.lr": 1e-3})
    by_cfg = resolve(StudyConfig.model_validate(data), {"policy.epochs": 2, "rewards.0.lr": 1e-3})
    assert by_dict == by_cfg and by_dict.policy.epochs == 2 and by_dict.rewards[0].lr == 1e-3
    assert data["policy"]["epochs"] == 5  # the caller's mapping is not changed
    with pytest.raises(
        RewardLabError, match=r"unknown key 'policy.epochz' \(did you mean 'policy.epochs'\?\)"
    ):
        resolve("studies/tiny.yaml", {"policy.epochz": 2})
