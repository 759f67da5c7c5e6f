"""Arithmetic, written from "answer with a number": 1 for an answer of digits of a plausible
length. Misses whether the digits are right."""


def reward(prompts, completions, **kw):
    out = []
    for p, c in zip(prompts, completions, strict=True):
        a, b = p.split("+")
        longest = max(len(a.split()), len(b.replace("=", "").split()))
        toks = c.split()
        out.append(float(1 <= len(toks) <= longest + 1 and all(t.isdigit() for t in toks)))
    return out
