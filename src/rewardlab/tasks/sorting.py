"""Sort a list of digits: credit per position plus a term for returning the same multiset.

Prompt ``"sort 5 2 9 2 :"``, ideal completion ``"2 2 5 9"``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DIGITS = [str(d) for d in range(10)]


@dataclass
class Sorting:
    """Sort `min_len`..`max_len` digits ascending.

    Gold, in [0, 1]:
        s = sorted(prompt digits);  c = completion.split()
        same    = 1 if Counter(c) == Counter(s) else 0      (a permutation of the input)
        placed  = #{i < min(len c, len s) : c[i] == s[i]} / max(len c, len s)
        gold    = PERM_WEIGHT * same + (1 - PERM_WEIGHT) * placed;  empty completion -> 0
    """

    min_len: int = 4
    max_len: int = 6
    name: str = "sorting"
    PERM_WEIGHT = 0.2  # credit for returning exactly the input's digits
    description = (
        "Sort the digits in the prompt in ascending order. A good answer lists exactly the "
        "prompt's digits, each as often as it appears there, smallest first."
    )
    reward_inputs = (
        "prompts like 'sort 5 2 9 2 :' (digits separated by spaces); completions like "
        "'2 2 5 9'; kw['answer'] holds the sorted digits"
    )

    def __post_init__(self) -> None:
        self.vocab = DIGITS + ["sort", ":"]
        self.max_new_tokens = self.max_len + 2
        self.gold_range = (0.0, 1.0)

    def prompts(self, n: int, rng: np.random.Generator) -> list[str]:
        out = []
        for _ in range(n):
            k = int(rng.integers(self.min_len, self.max_len + 1))
            out.append("sort " + " ".join(str(d) for d in rng.integers(0, 10, size=k)) + " :")
        return out

    @staticmethod
    def answer(prompt: str) -> list[str]:
        """The sorted digits of a prompt."""
        return sorted(prompt.split()[1:-1])

    def columns(self, prompts: Sequence[str]) -> dict[str, list]:
        """Per-prompt dataset columns handed to rewards: the reference ``answer``."""
        return {"answer": [" ".join(self.answer(p)) for p in prompts]}

    def demonstrations(
        self, prompts: Sequence[str], noise: float, rng: np.random.Generator
    ) -> list[str]:
        """The sorted list; each adjacent pair is swapped with probability `noise`, and with
        probability `noise`/2 one element is replaced by a random digit."""
        out = []
        for p in prompts:
            s = self.answer(p)
            for i in range(len(s) - 1):
                if rng.random() < noise:
                    s[i], s[i + 1] = s[i + 1], s[i]
            if rng.random() < noise / 2:
                s[int(rng.integers(len(s)))] = str(rng.integers(10))
            out.append(" ".join(s))
        return out

    def gold(self, prompts: Sequence[str], completions: Sequence[str], **kw) -> list[float]:
        scores = []
        for p, comp in zip(prompts, completions, strict=True):
            s, c = self.answer(p), comp.split()
            if not c:
                scores.append(0.0)
                continue
            same = float(Counter(c) == Counter(s))
            placed = sum(a == b for a, b in zip(c, s, strict=False)) / max(len(c), len(s))
            w = self.PERM_WEIGHT
            scores.append(w * same + (1 - w) * placed)
        return scores
