"""The demonstration discriminator recovers a planted log density ratio; demonstration sets."""

import numpy as np
import pandas as pd
import pytest

from rewardlab.config import StudyConfig
from rewardlab.errors import RewardLabError
from rewardlab.models import build_reward_model
from rewardlab.rewards.classifier import train_binary
from rewardlab.sequences import score_batched
from rewardlab.specs import ModelSpec
from rewardlab.study import run_study
from rewardlab.tasks import build_tokenizer
from tests.conftest import tiny_config_dict


def test_the_discriminator_recovers_a_planted_log_density_ratio():
    """One-token completions: demonstrations from q1, policy samples from q0, n1 = n0. The
    optimal logit is log q1(y) / q0(y) + log n1 / n0, known in closed form."""
    words = list("abcde")
    q1 = np.array([0.40, 0.25, 0.15, 0.12, 0.08])
    q0 = np.array([0.10, 0.15, 0.20, 0.25, 0.30])
    rng = np.random.default_rng(0)
    n = 6000
    pos, neg = rng.choice(5, n, p=q1), rng.choice(5, n, p=q0)
    comps = [words[i] for i in np.r_[pos, neg]]
    labels = np.r_[np.ones(n), np.zeros(n)]
    tok = build_tokenizer(words + ["x"])
    model = build_reward_model(ModelSpec(n_layer=1, n_embd=16, n_head=2), tok, positions=8)
    model.config.pad_token_id = tok.pad_token_id
    train_binary(model, tok, ["x"] * (2 * n), comps, labels, epochs=4, lr=3e-3, batch_size=128,
                 rng=np.random.default_rng(1))  # fmt: skip
    logit = score_batched(model, tok, ["x"] * 5, words)
    truth = np.log(q1 / q0)  # + log(n1 / n0) = 0
    assert np.abs(logit - truth).max() < 0.2, (logit, truth)


def _study(tmp_path, **demos):
    d = tiny_config_dict(tmp_path)
    d["rewards"] = [{"name": "disc", "kind": "demos", "epochs": 2, "demos": demos,
                     "model": {"n_layer": 1, "n_embd": 8, "n_head": 2}}]  # fmt: skip
    return StudyConfig.model_validate(d)


def test_clean_and_filtered_demonstration_sets_in_a_study(tmp_path):
    run_study(_study(tmp_path, source="clean", demos=100), tmp_path / "a", log=lambda m: None)
    met = pd.read_csv(tmp_path / "a" / "reward_models.csv").iloc[0]
    assert met.demonstrations == 90 and met.gold_calls == 0  # 10 held out; clean costs no gold
    s = run_study(_study(tmp_path, source="filtered"), tmp_path / "b", log=lambda m: None)
    met = pd.read_csv(tmp_path / "b" / "reward_models.csv").iloc[0]
    prefs = pd.read_parquet(s.stages["preferences"].path / "preferences.parquet")
    train = prefs[prefs.split == "train"]
    gold = np.r_[train.gold_chosen, train.gold_rejected]
    assert met.threshold == pytest.approx(np.quantile(gold, 0.75))
    assert met.demonstrations == (gold > met.threshold).sum() and met.gold_calls == len(gold)
    assert set(pd.read_csv(tmp_path / "b" / "curves.csv").reward) == {"disc", "rule"}


def test_bad_demonstration_sets_are_clear_errors(tmp_path):
    with pytest.raises(RewardLabError, match="no sample of the .* has gold above 5"):
        run_study(_study(tmp_path, source="filtered", threshold=5.0), tmp_path / "r",
                  log=lambda m: None)  # fmt: skip


def test_a_demonstration_the_tokenizer_cannot_encode_is_named():
    from rewardlab.rewards.demos import check_encodable

    tok = build_tokenizer(list("abc"))
    with pytest.raises(RewardLabError, match=r"demonstration 1 \('a zz'\) has words .*\['zz'\]"):
        check_encodable(tok, ["a b", "a zz"], "demonstration")
    with pytest.raises(RewardLabError, match="the demonstration set is empty"):
        check_encodable(tok, [], "demonstration")
