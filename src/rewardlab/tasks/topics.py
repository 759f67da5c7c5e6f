"""Free-text-like writing over a small vocabulary, judged by a rule that mixes three properties.

Prompt ``"write about river lamp :"``, a good completion ``"the river runs past a quiet lamp"``:
it uses every required word, repeats nothing and has a length inside the window. A learned proxy can
latch onto one property (say, the required words) and miss another (say, repetition).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TOPICS = "river lamp garden storm bread music winter horse letter mountain candle ship".split()
WORDS = (
    "the a and of to in past over quiet bright old small warm cold runs sings falls waits "
    "near under slowly softly we they"
).split()


@dataclass
class Topics:
    """Write about `n_required` topic words in `min_words`..`max_words` words without repeating.

    Gold, in [0, 1]:
        c = completion.split();  R = required words of the prompt
        coverage = |R ∩ set(c)| / |R|
        distinct = |set(c)| / len(c)                          (1 when nothing repeats)
        length   = 1 if min_words <= len(c) <= max_words
                   else max(0, 1 - distance to the window / min_words)
        gold = W_COVER * coverage + W_DISTINCT * distinct + W_LENGTH * length;  empty -> 0
    """

    n_required: int = 2
    min_words: int = 6
    max_words: int = 10
    name: str = "topics"
    W_COVER = 0.5  # weight of using the required words
    W_DISTINCT = 0.25  # weight of not repeating words
    W_LENGTH = 0.25  # weight of a length inside the window
    description = (
        "Write a short text about the topic words the prompt names. A good text uses every one "
        "of them, does not repeat any word, and is between 6 and 10 words long."
    )
    reward_inputs = (
        "prompts like 'write about river lamp :' (the topic words between 'write about' and "
        "':'); completions are space-separated words; kw['required'] holds the topic words"
    )

    def __post_init__(self) -> None:
        self.vocab = TOPICS + WORDS + ["write", "about", ":"]
        self.max_new_tokens = self.max_words + 4
        self.gold_range = (0.0, 1.0)

    def prompts(self, n: int, rng: np.random.Generator) -> list[str]:
        return [
            "write about " + " ".join(rng.choice(TOPICS, self.n_required, replace=False)) + " :"
            for _ in range(n)
        ]

    @staticmethod
    def required(prompt: str) -> list[str]:
        """The topic words a prompt asks for."""
        return prompt.split()[2:-1]

    def columns(self, prompts: Sequence[str]) -> dict[str, list]:
        """Per-prompt dataset columns handed to rewards: the ``required`` words."""
        return {"required": [" ".join(self.required(p)) for p in prompts]}

    def demonstrations(
        self, prompts: Sequence[str], noise: float, rng: np.random.Generator
    ) -> list[str]:
        """A length drawn in the window (outside it with probability `noise`/2); each required word
        kept with probability 1 - `noise`; filler words; a repeated word with probability `noise`."""
        out = []
        for p in prompts:
            n = int(rng.integers(self.min_words, self.max_words + 1))
            if rng.random() < noise / 2:
                n = int(rng.integers(1, self.min_words)) if rng.random() < 0.5 else n + 3
            req = [w for w in self.required(p) if rng.random() >= noise]
            others = [w for w in WORDS + TOPICS if w not in self.required(p)]
            fill = list(rng.choice(others, max(n - len(req), 0), replace=False))
            toks = (req + fill)[:n]
            rng.shuffle(toks)
            if rng.random() < noise and len(toks) > 1:
                toks[int(rng.integers(len(toks)))] = toks[int(rng.integers(len(toks)))]
            out.append(" ".join(str(t) for t in toks))
        return out

    def gold(self, prompts: Sequence[str], completions: Sequence[str], **kw) -> list[float]:
        scores = []
        for p, comp in zip(prompts, completions, strict=True):
            c, req = comp.split(), self.required(p)
            if not c:
                scores.append(0.0)
                continue
            coverage = len(set(req) & set(c)) / len(req)
            distinct = len(set(c)) / len(c)
            dist = max(self.min_words - len(c), len(c) - self.max_words, 0)
            length = max(0.0, 1 - dist / self.min_words)
            scores.append(
                self.W_COVER * coverage + self.W_DISTINCT * distinct + self.W_LENGTH * length
            )
        return scores
