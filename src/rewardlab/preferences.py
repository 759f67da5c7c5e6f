"""Preference pairs from a sample pool, labelled by the gold rule, in TRL's preference layout.

Columns: ``prompt, chosen, rejected, gold_chosen, gold_rejected, split``.
"""

from __future__ import annotations

from pathlib import Path
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


PAIR_COLUMNS = ("prompt", "chosen", "rejected")


def _text(value, what: str, row: int, path) -> tuple[str, str]:
    """(prompt part, response) of a standard (a string) or conversational (a list of
    ``{"role", "content"}`` messages) field: a conversation's last message is the response and
    the messages before it, their contents joined by newlines, the prompt part."""
    if isinstance(value, str):
        return "", value
    msgs = list(value) if isinstance(value, list | tuple | np.ndarray) else None
    if not msgs or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in msgs):
        raise RewardLabError(
            f"preference file {path}, row {row}: {what} must be a string or a list of "
            f"{{'role', 'content'}} messages, got {type(value).__name__}"
        )
    return "\n".join(m["content"] for m in msgs[:-1]), msgs[-1]["content"]


def read_preference_file(path: str, test_fraction: float, rng: np.random.Generator) -> pd.DataFrame:
    """Pairs ``prompt, chosen, rejected, split`` from a local file in TRL's preference layout.

    Parquet, or JSON lines (``.jsonl``/``.json``). Standard form: three strings. Conversational
    form: ``prompt`` a list of messages and ``chosen``/``rejected`` lists holding the answer, or
    no ``prompt`` and ``chosen``/``rejected`` whole conversations sharing it (implicit prompt).
    Without a ``split`` column (values train/test), ``test_fraction`` of the distinct prompts are
    held out (drawn from `rng`). A ``labeller`` column is kept.

    Raises:
        RewardLabError: unreadable file, missing columns, a malformed row.
    """
    p = Path(path)
    try:
        if p.suffix == ".parquet":
            raw = pd.read_parquet(p)
        elif p.suffix in (".jsonl", ".json"):
            raw = pd.read_json(p, lines=True)
        else:
            raise RewardLabError(f"preference file {p}: give a .parquet or .jsonl file")
    except RewardLabError:
        raise
    except Exception as exc:
        raise RewardLabError(
            f"preference file {p} is unreadable: {type(exc).__name__}: {exc}"
        ) from None
    need = [c for c in ("chosen", "rejected") if c not in raw]
    if need:
        raise RewardLabError(
            f"preference file {p} lacks the column(s) {', '.join(need)}; it has "
            f"{', '.join(map(str, raw.columns))} (TRL's layout: prompt, chosen, rejected)"
        )
    rows = []
    for i, r in enumerate(raw.to_dict("records")):
        pre_c, chosen = _text(r["chosen"], "chosen", i, p)
        pre_r, rejected = _text(r["rejected"], "rejected", i, p)
        if "prompt" in raw:
            prompt = r["prompt"] if isinstance(r["prompt"], str) else None
            if prompt is None:
                msgs = r["prompt"]
                ok = isinstance(msgs, list | tuple | np.ndarray) and len(msgs) > 0
                if not ok or not all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                     for m in msgs):  # fmt: skip
                    raise RewardLabError(f"preference file {p}, row {i}: prompt must be a string "
                                         "or a list of {'role', 'content'} messages")  # fmt: skip
                prompt = "\n".join(m["content"] for m in msgs)
        else:
            if pre_c != pre_r or not pre_c:
                raise RewardLabError(
                    f"preference file {p}, row {i}: no prompt column, and chosen and rejected do "
                    "not share their messages before the answer (an implicit prompt)"
                )
            prompt = pre_c
        rows.append(dict(prompt=prompt, chosen=chosen.strip(), rejected=rejected.strip()))
    df = pd.DataFrame(rows, columns=list(PAIR_COLUMNS))
    if "labeller" in raw:  # who labelled each pair (the labelling app's export says)
        df["labeller"] = raw["labeller"].astype(str).to_numpy()
    if len(df) == 0:
        raise RewardLabError(f"preference file {p} has no rows")
    if "split" in raw:
        bad = sorted(set(raw["split"].astype(str)) - {"train", "test"})
        if bad:
            raise RewardLabError(
                f"preference file {p}: split values must be train or test, got {bad}"
            )
        df["split"] = raw["split"].astype(str).to_numpy()
    else:
        prompts = df.prompt.unique()
        n_test = max(1, round(test_fraction * len(prompts))) if len(prompts) > 1 else 0
        test = set(rng.choice(prompts, n_test, replace=False).tolist()) if n_test else set()
        df["split"] = np.where(df.prompt.isin(test), "test", "train")
    if not (df.split == "train").any():
        raise RewardLabError(f"preference file {p} has no training pairs")
    return df
