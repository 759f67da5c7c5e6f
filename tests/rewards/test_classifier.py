"""The good/bad-label classifier: a learnable planted rule, bad thresholds, and a study."""

import numpy as np
import pandas as pd
import pytest

from rewardlab.config import StudyConfig
from rewardlab.errors import RewardLabError
from rewardlab.models import build_reward_model
from rewardlab.rewards.classifier import binary_accuracy, train_binary
from rewardlab.specs import ModelSpec
from rewardlab.study import run_study
from rewardlab.tasks import build_tokenizer
from tests.conftest import tiny_config_dict

WORDS = list("abcdefgh")


def _planted(n, rng):
    """Completions of 3 to 6 letters; good (1) exactly when 'a' appears and 'b' does not."""
    comps = [" ".join(rng.choice(WORDS, rng.integers(3, 7))) for _ in range(n)]
    labels = np.array([("a" in c.split()) and ("b" not in c.split()) for c in comps], dtype=float)
    return comps, labels


def test_the_classifier_learns_a_planted_rule():
    tok = build_tokenizer(WORDS + ["q", ":"])
    rng = np.random.default_rng(0)
    comps, labels = _planted(3000, rng)
    test_c, test_l = _planted(1000, np.random.default_rng(1))
    assert 0.2 < labels.mean() < 0.8  # both classes well represented
    model = build_reward_model(ModelSpec(n_layer=1, n_embd=32, n_head=2), tok, positions=16)
    model.config.pad_token_id = tok.pad_token_id
    met = train_binary(model, tok, ["q :"] * 3000, comps, labels, epochs=20, lr=3e-3,
                       batch_size=64, rng=np.random.default_rng(2))  # fmt: skip
    acc = binary_accuracy(model, tok, ["q :"] * 1000, test_c, test_l)
    assert acc > 0.95, acc
    assert met["positives"] == int(labels.sum()) and met["samples"] == 3000


def test_one_empty_class_is_a_clear_error():
    tok = build_tokenizer(WORDS)
    model = build_reward_model(ModelSpec(n_layer=1, n_embd=8, n_head=2), tok, positions=16)
    with pytest.raises(
        RewardLabError, match="all 3 labelled samples are bad, so one class is empty"
    ):
        train_binary(model, tok, ["a"] * 3, ["b", "c", "d"], np.zeros(3), epochs=1, lr=1e-3,
                     batch_size=2, rng=np.random.default_rng(0))  # fmt: skip


def _study(tmp_path, **reward):
    d = tiny_config_dict(tmp_path)
    d["rewards"] = [{"name": "clf", "kind": "classifier", "epochs": 2,
                     "model": {"n_layer": 1, "n_embd": 8, "n_head": 2}, **reward}]  # fmt: skip
    return StudyConfig.model_validate(d)


def test_a_study_with_a_classifier_labels_the_pairs_samples(tmp_path):
    s = run_study(_study(tmp_path, flip_rate=0.2), tmp_path / "run", log=lambda m: None)
    met = pd.read_csv(tmp_path / "run" / "reward_models.csv").iloc[0]
    prefs = pd.read_parquet(s.stages["preferences"].path / "preferences.parquet")
    train = prefs[prefs.split == "train"]
    gold = np.r_[train.gold_chosen, train.gold_rejected]
    assert met.gold_calls == 2 * len(train)  # the pairs' samples: as many gold calls as BT uses
    assert met.threshold == pytest.approx(np.median(gold))
    assert 0 < met.flipped < len(gold) * 0.35  # about 20% of the labels flipped
    curves = pd.read_csv(tmp_path / "run" / "curves.csv")
    assert set(curves.reward) == {"clf", "rule"}
    table = pd.read_csv(tmp_path / "run" / "rewards.csv").set_index("reward")
    assert table.loc["clf", "kind"] == "classifier"


def test_a_threshold_above_every_sample_is_refused(tmp_path):
    with pytest.raises(RewardLabError, match="are bad, so one class is empty"):
        run_study(_study(tmp_path, threshold=99.0), tmp_path / "run", log=lambda m: None)
