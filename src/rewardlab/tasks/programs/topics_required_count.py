"""Topics, written from "mention the required words": counts every occurrence of a required
word. Misses that repeating them is bad, and the length window."""


def reward(prompts, completions, **kw):
    out = []
    for p, c in zip(prompts, completions, strict=True):
        req = set(p.split()[2:-1])
        out.append(float(sum(w in req for w in c.split())) / len(req))
    return out
