"""Arithmetic, written from "check the units digit": 1 when the last digit of the answer is the
last digit of the sum. Misses every other digit."""


def reward(prompts, completions, **kw):
    out = []
    for p, c in zip(prompts, completions, strict=True):
        a, b = p.split("+")
        total = int("".join(a.split())) + int("".join(b.replace("=", "").split()))
        toks = c.split()
        out.append(float(bool(toks) and toks[-1] == str(total % 10)))
    return out
