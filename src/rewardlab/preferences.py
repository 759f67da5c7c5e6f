"""Preference pairs from a sample pool, labelled by the gold rule, in TRL's preference layout.

Columns: ``prompt, chosen, rejected, gold_chosen, gold_rejected, split``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from rewardlab.cache import StageResult
from rewardlab.common.io import read_parquet
from rewardlab.errors import RewardLabError
from rewardlab.label.agreement import agreement
from rewardlab.seeding import rng
from rewardlab.specs import Strict, input_field
from rewardlab.tasks import TaskConfig, checked_gold
from rewardlab.userfiles import file_sha256


class PreferenceConfig(Strict):
    """Preference pairs from the base policy's samples, labelled by the gold rule, or read from
    a local file."""

    file: str | None = input_field(
        None, "file", "a local preference file (.parquet, .jsonl or .json lines) with prompt, "
        "chosen, rejected (TRL's layout, standard or conversational; an optional split column of "
        "train/test), used instead of gold-labelled pool pairs; its content is in the cache key",
    )  # fmt: skip

    prompts: int = Field(1000, ge=1, description="prompts whose samples are paired")
    samples_per_prompt: int = Field(4, ge=2, description="paired disjointly: k/2 pairs a prompt")
    label: Literal["deterministic", "bradley_terry"] = Field(
        "deterministic", description="higher gold wins, or a Bradley-Terry draw (bt_scale)"
    )
    bt_scale: float = Field(
        10.0, gt=0, description="bradley_terry: P(a chosen) = sigmoid(bt_scale * (gold_a - gold_b))"
    )
    flip_rate: float = Field(0.0, ge=0, le=0.5, description="probability a label is flipped")
    test_fraction: float = Field(0.1, gt=0, lt=1, description="prompts held out for accuracy")
    min_margin: float = Field(
        0.0,
        ge=0,
        description="pairs whose gold differs by less than this (gold units) are dropped as "
        "near-ties, as exact ties always are",
    )

    def cache_key(self) -> dict:
        """The config, and the preference file's content when there is one (without a file,
        the key is what it was before files could be given)."""
        d = self.model_dump(mode="json", exclude={"file"})
        if self.file is not None:
            d.update(file=self.file, file_sha256=file_sha256(self.file))
        return d


def split_pairs(
    preferences: StageResult, train_pairs: int | None, who: str, skip: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and held-out pairs of a preference stage; the training pairs after the first
    `skip`, and of those the first `train_pairs` when given (more than there are is an error
    naming `who`)."""
    prefs = read_parquet(preferences.path / "preferences.parquet")
    train, test = prefs[prefs.split == "train"], prefs[prefs.split == "test"]
    if skip >= len(train):
        raise RewardLabError(f"{who} skips {skip} training pairs of {len(train)}: none are left")
    train = train.iloc[skip:]
    if train_pairs is not None:
        if train_pairs > len(train):
            raise RewardLabError(
                f"{who} asks for train_pairs={train_pairs} but the preference data has only "
                f"{len(train)} training pairs" + (f" after skipping {skip}" if skip else "")
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


def stage_preferences(cfg: PreferenceConfig, pool: StageResult, seed: int, out: Path) -> None:
    """Label pairs of the pool by gold (stream (seed, "preferences")); write
    ``preferences.parquet`` and counts."""
    df = read_parquet(pool.path / "pool.parquet")
    prefs = make_pairs(df, cfg, rng(seed, "preferences"))
    prefs.to_parquet(out / "preferences.parquet", index=False)
    counts = prefs["split"].value_counts().to_dict()
    flipped = float((prefs["gold_chosen"] < prefs["gold_rejected"]).mean()) if len(prefs) else 0.0
    (out / "metrics.json").write_text(json.dumps(dict(pairs=counts, label_noise=flipped), indent=1))


LABELLERS_FILE = "labellers.csv"  # a preference file's labellers and their agreement with gold


def stage_file_preferences(
    cfg: PreferenceConfig, task_cfg: TaskConfig, seed: int, out: Path
) -> None:
    """Pairs read from the local file `cfg.file` (`preferences.read_preference_file`), split by
    prompt with the stream (seed, "preferences") unless it has a split column, gold-scored by the
    task so that accuracy by gold margin can be reported; ``preferences.parquet`` and counts, and
    for a file with a ``labeller`` column ``labellers.csv`` and ``labeller_pairs.csv``
    (`label.agreement`)."""
    prefs = read_preference_file(cfg.file, cfg.test_fraction, rng(seed, "preferences"))
    task = task_cfg.load()
    p = prefs.prompt.tolist()
    prefs.insert(3, "gold_chosen", checked_gold(task, p, prefs.chosen.tolist()))
    prefs.insert(4, "gold_rejected", checked_gold(task, p, prefs.rejected.tolist()))
    prefs.to_parquet(out / "preferences.parquet", index=False)
    if "labeller" in prefs:  # people's labels: how far each agrees with gold and with the others
        as_labels = [dict(kind="comparison", labeller=r.labeller, prompt=r.prompt, a=r.chosen,
                          b=r.rejected, choice="a", gold_a=r.gold_chosen, gold_b=r.gold_rejected)
                     for r in prefs.itertuples()]  # fmt: skip
        per, pairs = agreement(as_labels)
        per.to_csv(out / LABELLERS_FILE, index=False)
        pairs.to_csv(out / "labeller_pairs.csv", index=False)
    counts = prefs["split"].value_counts().to_dict()
    against = float((prefs.gold_chosen < prefs.gold_rejected).mean())
    (out / "metrics.json").write_text(
        json.dumps(dict(pairs=counts, label_noise=against, file=str(cfg.file)), indent=1)
    )
