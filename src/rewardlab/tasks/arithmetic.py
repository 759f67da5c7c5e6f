"""Multi-digit addition with partial credit: one point per correct digit plus a format term.

Prompt ``"3 4 7 + 5 8 ="``, ideal completion ``"4 0 5"`` (tokens are single digits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DIGITS = [str(d) for d in range(10)]


@dataclass
class Arithmetic:
    """Add two numbers of 1..`digits` digits.

    Gold, in [0, 1] (in the spirit of TinyZero's format and answer scores):
        tokens  = completion.split();  t = digits of the true sum
        format  = 1 if 1 <= len(tokens) <= len(t) + 1 and every token is a digit, else 0
        correct = #{i : tokens[-1-i] == t[-1-i]}  (digits aligned from the ones place)
        gold    = format * (FORMAT_WEIGHT + (1 - FORMAT_WEIGHT) * correct / max(len(tokens), len(t)))
    A right answer scores 1; a well-formed answer with no right digit scores FORMAT_WEIGHT.
    """

    digits: int = 3
    name: str = "arithmetic"
    FORMAT_WEIGHT = 0.1  # reward for a well-formed answer, whatever its digits
    description = (
        "Add the two numbers in the prompt. A good answer is the sum, written as its digits "
        "and nothing else."
    )
    reward_inputs = (
        "prompts like '3 4 7 + 5 8 =' (digits separated by spaces); completions like '4 0 5'; "
        "kw['answer'] holds the true sum in the same form"
    )

    def __post_init__(self) -> None:
        self.vocab = DIGITS + ["+", "="]
        self.max_new_tokens = self.digits + 2
        self.gold_range = (0.0, 1.0)

    def prompts(self, n: int, rng: np.random.Generator) -> list[str]:
        out = []
        for _ in range(n):
            a, b = (int(rng.integers(0, 10 ** int(rng.integers(1, self.digits + 1)))) for _ in "ab")
            out.append(f"{' '.join(str(a))} + {' '.join(str(b))} =")
        return out

    @staticmethod
    def answer(prompt: str) -> str:
        """The true sum of a prompt, as space-separated digits."""
        left, right = prompt.replace("=", "").split("+")
        return " ".join(str(int(left.replace(" ", "")) + int(right.replace(" ", ""))))

    def columns(self, prompts: Sequence[str]) -> dict[str, list]:
        """Per-prompt dataset columns handed to rewards: the reference ``answer``."""
        return {"answer": [self.answer(p) for p in prompts]}

    def demonstrations(
        self, prompts: Sequence[str], noise: float, rng: np.random.Generator
    ) -> list[str]:
        """The true sum; with probability `noise` each digit is replaced by a random one, and with
        probability `noise`/2 a random digit is dropped or added."""
        out = []
        for p in prompts:
            toks = self.answer(p).split()
            toks = [str(rng.integers(10)) if rng.random() < noise else t for t in toks]
            if rng.random() < noise / 2:
                if len(toks) > 1 and rng.random() < 0.5:
                    del toks[int(rng.integers(len(toks)))]
                else:
                    toks.insert(int(rng.integers(len(toks) + 1)), str(rng.integers(10)))
            out.append(" ".join(toks))
        return out

    def gold(self, prompts: Sequence[str], completions: Sequence[str], **kw) -> list[float]:
        scores = []
        for p, c in zip(prompts, completions, strict=True):
            t, toks = self.answer(p).split(), c.split()
            if not (1 <= len(toks) <= len(t) + 1 and all(x in DIGITS for x in toks)):
                scores.append(0.0)
                continue
            k = min(len(t), len(toks))
            correct = sum(toks[-1 - i] == t[-1 - i] for i in range(k))
            w = self.FORMAT_WEIGHT
            scores.append(w + (1 - w) * correct / max(len(toks), len(t)))
        return scores
