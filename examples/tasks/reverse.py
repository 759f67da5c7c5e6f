"""A user's task, as a worked example: reverse a list of letters.

Run it with:  rewardlab run --task examples/tasks/reverse.py --set task.params.length=5
"""

from dataclasses import dataclass

import numpy as np

LETTERS = list("abcdefgh")


@dataclass
class Reverse:
    """Reverse `length` letters. Gold in [0, 1]: the fraction of positions that are right,
    over max(len(completion), length); an empty completion scores 0."""

    length: int = 4
    name: str = "reverse"

    def __post_init__(self):
        self.vocab = LETTERS + ["reverse", ":"]  # every token a prompt or completion may hold
        self.max_new_tokens = self.length + 2  # room for a little too much
        self.gold_range = (0.0, 1.0)

    def prompts(self, n, rng):
        return ["reverse " + " ".join(rng.choice(LETTERS, self.length)) + " :" for _ in range(n)]

    def demonstrations(self, prompts, noise, rng):
        out = []
        for p in prompts:
            target = p.split()[1:-1][::-1]
            out.append(
                " ".join(str(rng.choice(LETTERS)) if rng.random() < noise else t for t in target)
            )
        return out

    def gold(self, prompts, completions, **kw):
        scores = []
        for p, c in zip(prompts, completions, strict=True):
            target, toks = p.split()[1:-1][::-1], c.split()
            right = sum(a == b for a, b in zip(toks, target, strict=False))
            scores.append(right / max(len(toks), len(target)) if toks else 0.0)
        return scores


def make_task(**params):
    """The lab calls this with `task.params` from the config."""
    return Reverse(**params)


if __name__ == "__main__":  # a quick look at the task
    t = make_task()
    ps = t.prompts(3, np.random.default_rng(0))
    print(list(zip(ps, t.demonstrations(ps, 0.3, np.random.default_rng(1)), strict=True)))
