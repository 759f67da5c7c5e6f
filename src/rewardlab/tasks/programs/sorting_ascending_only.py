"""Sorting, written from "the output must be in ascending order": 1 for a non-empty
non-decreasing list of digits. Misses that it must hold the input's digits."""


def reward(prompts, completions, **kw):
    out = []
    for c in completions:
        toks = c.split()
        ok = bool(toks) and all(t.isdigit() for t in toks)
        out.append(float(ok and all(a <= b for a, b in zip(toks, toks[1:], strict=False))))
    return out
