"""Topics, written from "use the required words": the fraction of required words present.
Misses repetition and the length window."""


def reward(prompts, completions, **kw):
    out = []
    for p, c in zip(prompts, completions, strict=True):
        req = p.split()[2:-1]  # "write about w1 w2 :"
        words = set(c.split())
        out.append(sum(w in words for w in req) / len(req))
    return out
