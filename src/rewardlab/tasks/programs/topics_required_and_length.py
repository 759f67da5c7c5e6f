"""Topics, written from "use the required words in 6 to 10 words": half for the fraction of
required words present, half for a length in the window. Misses repetition."""


def reward(prompts, completions, **kw):
    out = []
    for p, c in zip(prompts, completions, strict=True):
        req, toks = p.split()[2:-1], c.split()
        coverage = sum(w in set(toks) for w in req) / len(req)
        out.append(0.5 * coverage + 0.5 * float(6 <= len(toks) <= 10))
    return out
