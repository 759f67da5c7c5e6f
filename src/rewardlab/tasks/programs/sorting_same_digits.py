"""Sorting, written from "the output must hold the input's digits": 1 when the completion is a
permutation of the prompt's digits. Misses the order."""

from collections import Counter


def reward(prompts, completions, **kw):
    return [
        float(Counter(c.split()) == Counter(p.split()[1:-1]))
        for p, c in zip(prompts, completions, strict=True)
    ]
