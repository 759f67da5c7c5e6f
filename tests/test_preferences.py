import numpy as np
import pandas as pd
import pytest

from rewardlab.config import PreferenceConfig
from rewardlab.preferences import make_pairs


def pool(golds_per_prompt):
    rows = []
    for pid, golds in enumerate(golds_per_prompt):
        for sid, g in enumerate(golds):
            rows.append(dict(prompt_id=pid, prompt=f"p{pid}", completion=f"c{pid}_{sid}", gold=g))
    return pd.DataFrame(rows)


def test_deterministic_labels_drop_ties_and_keep_trl_columns():
    df = make_pairs(pool([[0.1, 0.2, 0.5, 0.5]] * 1), PreferenceConfig(), np.random.default_rng(0))
    assert list(df.columns) == [
        "prompt",
        "chosen",
        "rejected",
        "gold_chosen",
        "gold_rejected",
        "split",
    ]
    assert (df.gold_chosen > df.gold_rejected).all()
    # four samples make two disjoint pairs; a tie (0.5, 0.5) is dropped if drawn
    assert 1 <= len(df) <= 2


def test_flip_rate_is_the_fraction_of_flipped_labels():
    rng = np.random.default_rng(1)
    golds = rng.random((2000, 2))
    df = make_pairs(pool(golds), PreferenceConfig(flip_rate=0.25), np.random.default_rng(2))
    flipped = (df.gold_chosen < df.gold_rejected).mean()
    se = np.sqrt(0.25 * 0.75 / len(df))
    assert abs(flipped - 0.25) < 4 * se


def test_bradley_terry_labels_follow_the_sigmoid():
    # every pair differs by exactly 0.1 in gold: P(higher chosen) = sigmoid(bt_scale * 0.1)
    golds = [[0.3, 0.4]] * 3000
    cfg = PreferenceConfig(label="bradley_terry", bt_scale=10.0)
    df = make_pairs(pool(golds), cfg, np.random.default_rng(3))
    p = 1 / (1 + np.exp(-1.0))
    right = (df.gold_chosen > df.gold_rejected).mean()
    assert abs(right - p) < 4 * np.sqrt(p * (1 - p) / len(df))


def test_test_split_is_by_prompt():
    df = make_pairs(
        pool(np.random.default_rng(4).random((50, 4))),
        PreferenceConfig(test_fraction=0.2),
        np.random.default_rng(5),
    )
    by_prompt = df.groupby("prompt")["split"].nunique()
    assert (by_prompt == 1).all()
    assert df.drop_duplicates("prompt").split.eq("test").sum() == pytest.approx(10, abs=1)


def test_min_margin_drops_exactly_the_near_ties():
    # two samples a prompt: one pair each, with gold gaps 0.01, 0.04, 0.05, 0.3
    golds = [[0.5, 0.51], [0.2, 0.24], [0.0, 0.05], [0.9, 0.6]]
    kept = make_pairs(pool(golds), PreferenceConfig(min_margin=0.05), np.random.default_rng(0))
    gaps = sorted((kept.gold_chosen - kept.gold_rejected).round(6))
    assert gaps == [0.05, 0.3]
    assert len(make_pairs(pool(golds), PreferenceConfig(), np.random.default_rng(0))) == 4
