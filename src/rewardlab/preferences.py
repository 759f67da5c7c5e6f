"""Preference pairs from a sample pool, labelled by the gold rule, in TRL's preference layout.

Columns: ``prompt, chosen, rejected, gold_chosen, gold_rejected, split``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rewardlab.cache import StageResult
from rewardlab.common.io import read_parquet
from rewardlab.errors import RewardLabError

if TYPE_CHECKING:  # config imports the reward sources, which import this module
    from rewardlab.config import PreferenceConfig


def split_pairs(
    preferences: StageResult, train_pairs: int | None, who: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and held-out pairs of a preference stage; the first `train_pairs` training
    pairs when given (more than there are is an error naming `who`)."""
    prefs = read_parquet(preferences.path / "preferences.parquet")
    train, test = prefs[prefs.split == "train"], prefs[prefs.split == "test"]
    if train_pairs is not None:
        if train_pairs > len(train):
            raise RewardLabError(
                f"{who} asks for train_pairs={train_pairs} but the preference data has only "
                f"{len(train)} training pairs"
            )
        train = train.iloc[:train_pairs]
    return train, test


def make_pairs(pool: pd.DataFrame, cfg: PreferenceConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Pair the samples of each prompt disjointly and label each pair.

    For every prompt, its samples are shuffled and paired (0, 1), (2, 3), ...; pairs with equal
    gold are dropped (ties), and so are pairs with |gold_a - gold_b| < ``min_margin`` (near-ties).
    Labels:
      - ``deterministic``: the sample with the higher gold is chosen;
      - ``bradley_terry``: a is chosen with probability sigmoid(bt_scale * (gold_a - gold_b)).
    Then each label is flipped with probability ``flip_rate``. Prompts are split into train and
    test (``test_fraction`` of the prompts), so test pairs come from prompts never trained on.

    Args:
        pool: columns ``prompt_id, prompt, completion, gold``.
    """
    prompt_ids = pool["prompt_id"].unique()
    n_test = max(1, round(cfg.test_fraction * len(prompt_ids)))
    test_ids = set(rng.choice(prompt_ids, n_test, replace=False).tolist())
    rows = []
    for pid, group in pool.groupby("prompt_id", sort=True):
        idx = rng.permutation(len(group))
        comps, golds = group["completion"].to_numpy(), group["gold"].to_numpy()
        prompt = group["prompt"].iloc[0]
        for a, b in zip(idx[0::2], idx[1::2], strict=False):
            ga, gb = golds[a], golds[b]
            if ga == gb or abs(ga - gb) < cfg.min_margin:
                continue
            if cfg.label == "deterministic":
                a_wins = ga > gb
            else:
                a_wins = rng.random() < 1 / (1 + np.exp(-cfg.bt_scale * (ga - gb)))
            if rng.random() < cfg.flip_rate:
                a_wins = not a_wins
            w, lose = (a, b) if a_wins else (b, a)
            rows.append(
                dict(
                    prompt=prompt,
                    chosen=comps[w],
                    rejected=comps[lose],
                    gold_chosen=float(golds[w]),
                    gold_rejected=float(golds[lose]),
                    split="test" if pid in test_ids else "train",
                )
            )
    cols = ["prompt", "chosen", "rejected", "gold_chosen", "gold_rejected", "split"]
    return pd.DataFrame(rows, columns=cols)
