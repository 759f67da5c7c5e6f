"""How far people agree: each labeller with gold, and each pair of labellers with each other.

Only comparisons labelled left or right count. With gold: a label agrees when its chosen side has
the higher gold (pairs with equal gold are left out); agreement = agreeing / counted. Between
labellers u and v: over the comparisons both labelled (the same prompt and the same two
completions, in either order), the fraction where they prefer the same completion.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pandas as pd


def _preferred(r: dict) -> tuple[tuple, str]:
    """(the comparison, order-free; the completion preferred)."""
    key = (r["prompt"], *sorted((r["a"], r["b"])))
    return key, r["a"] if r["choice"] == "a" else r["b"]


def agreement(labels: Sequence[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per labeller: labels, with_gold_n, with_gold; per pair of labellers: shared, agree)."""
    rows = [r for r in labels if r["kind"] == "comparison" and r["choice"] in ("a", "b")]
    per, prefs = [], {}
    for name in sorted({r["labeller"] for r in rows}):
        mine = [r for r in rows if r["labeller"] == name]
        scored = [r for r in mine if r["gold_a"] is not None and r["gold_a"] != r["gold_b"]]
        right = [(r["gold_a"] > r["gold_b"]) == (r["choice"] == "a") for r in scored]
        per.append(dict(labeller=name, labels=len(mine), with_gold_n=len(scored),
                        with_gold=sum(right) / len(right) if right else float("nan")))  # fmt: skip
        prefs[name] = dict(_preferred(r) for r in mine)
    pairs = []
    for u, v in itertools.combinations(sorted(prefs), 2):
        shared = set(prefs[u]) & set(prefs[v])
        same = sum(prefs[u][k] == prefs[v][k] for k in shared)
        pairs.append(dict(labeller_a=u, labeller_b=v, shared=len(shared),
                          agree=same / len(shared) if shared else float("nan")))  # fmt: skip
    return (pd.DataFrame(per, columns=["labeller", "labels", "with_gold_n", "with_gold"]),
            pd.DataFrame(pairs, columns=["labeller_a", "labeller_b", "shared", "agree"]))  # fmt: skip
