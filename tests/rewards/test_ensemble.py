import numpy as np
import pytest

from rewardlab.rewards import EnsembleReward, RuleReward, reduce_scores
from rewardlab.tasks import load_task

S = np.array([[1.0, 0.0, 2.0], [3.0, 0.0, -2.0]])  # 2 members x 3 samples


def test_reducers_hand_computed():
    assert reduce_scores(S, "mean").tolist() == [2.0, 0.0, 0.0]
    assert reduce_scores(S, "min").tolist() == [1.0, 0.0, -2.0]
    # population variance: [(1-2)^2 + (3-2)^2]/2 = 1, 0, [(2-0)^2 + (-2-0)^2]/2 = 4
    assert reduce_scores(S, "uwo", lam=0.5).tolist() == [1.5, 0.0, -2.0]


def test_unknown_reducer():
    with pytest.raises(ValueError, match="unknown reducer"):
        reduce_scores(S, "max")


def test_ensemble_reward_has_trl_signature():
    members = [lambda p, c, **kw: [1.0, 3.0], lambda p, c, **kw: [3.0, 3.0]]
    assert EnsembleReward(members, "min")(["a", "b"], ["x", "y"]) == [1.0, 3.0]
    assert EnsembleReward(members, "uwo", lam=1.0)(prompts=["a", "b"], completions=["x", "y"]) == [
        1.0,
        3.0,
    ]


def test_rule_reward():
    r = RuleReward(load_task("arithmetic"))
    assert r(["1 + 1 ="], ["2"]) == [1.0]
    assert r.__name__ == "rule:arithmetic"


def test_member_0_is_the_single_model_of_the_same_spec(tmp_path):
    """An ensemble's member 0 and a learned model of its spec are one stage (trained once)."""
    from rewardlab.config import StudyConfig
    from rewardlab.study import run_study
    from tests.conftest import tiny_config_dict

    d = tiny_config_dict(tmp_path)
    d["rewards"][1]["model"] = d["rewards"][0]["model"]
    s = run_study(StudyConfig.model_validate(d), tmp_path / "run", log=lambda _: None).stages
    assert s["rm-rm-b-m0"].hash == s["rm-rm-a"].hash
    assert s["rm-rm-b-m1"].hash != s["rm-rm-a"].hash
