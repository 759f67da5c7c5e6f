"""The Task protocol, the word-level tokenizer every built-in task uses, and gold-call checking.

Texts in the lab are space-separated tokens (``"1 2 + 3 4 ="``). A task names its vocabulary and the
lab builds a `tokenizers` WordLevel tokenizer over it, so nothing is downloaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from rewardlab.errors import RewardLabError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK]


@runtime_checkable
class Task(Protocol):
    """What a task gives the lab.

    Attributes:
        name: a short identifier, used in run folders and reports.
        vocab: every token that prompts and completions may contain (specials are added by the lab).
        max_new_tokens: an upper bound on the length of a good completion, in tokens.
        gold_range: the (min, max) that `gold` can return, as documented by the task.

    Optional: ``description``, what is wanted in the words a person would give a programmer
    (not the gold rule's code), and ``reward_inputs``, what a reward function receives; the
    built-in tasks have both (a reward written from a description starts there).
    """

    name: str
    vocab: list[str]
    max_new_tokens: int
    gold_range: tuple[float, float]

    def prompts(self, n: int, rng: np.random.Generator) -> list[str]:
        """Draw `n` prompts with the generator `rng`."""
        ...

    def demonstrations(
        self, prompts: Sequence[str], noise: float, rng: np.random.Generator
    ) -> list[str]:
        """One demonstration completion per prompt; `noise` in [0, 1] makes them imperfect."""
        ...

    def gold(self, prompts: Sequence[str], completions: Sequence[str], **kw) -> list[float]:
        """The rule's graded score of each completion; never evaluates model output as code."""
        ...

    # optional: ``columns(prompts) -> dict[str, list]``, per-prompt dataset columns (a reference
    # answer, say) that every reward receives as keyword arguments, as TRL passes a dataset's
    # columns; see docs/TASKS.md


def build_tokenizer(vocab: Sequence[str]) -> PreTrainedTokenizerFast:
    """A WordLevel tokenizer over the special tokens then `vocab`, splitting on whitespace.

    Ids 0..3 are ``<pad> <bos> <eos> <unk>``; decoding joins tokens with single spaces, so
    ``decode(encode(t)) == t`` for any text `t` of in-vocabulary tokens separated by single spaces.
    ``tok(t)`` prepends ``<bos>``; ``tok(t, add_special_tokens=False)`` does not.
    """
    from transformers import PreTrainedTokenizerFast

    words = list(SPECIAL_TOKENS) + [w for w in dict.fromkeys(vocab) if w not in SPECIAL_TOKENS]
    for w in words:
        if not w or any(c.isspace() for c in w):
            raise RewardLabError(f"task vocabulary token {w!r} is empty or contains whitespace")
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # tok(text) prepends <bos> (as trainers that tokenise prompts themselves expect);
    # the lab's own code encodes with add_special_tokens=False and adds <bos> itself
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, words.index(BOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK
    )


def checked_gold(task: Task, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
    """Call `task.gold` and check it: it must not raise and must return one finite float per sample.

    Raises:
        RewardLabError: naming the task, the sample index, the prompt and the completion.
    """
    prompts, completions = list(prompts), list(completions)
    try:
        scores = task.gold(prompts, completions)
    except Exception as exc:  # a user's rule may raise anything: report it with the batch
        # find the first sample that raises, so the message names it
        for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):
            try:
                task.gold([p], [c])
            except Exception as one:
                raise RewardLabError(
                    f"the gold function of task {task.name!r} raised {type(one).__name__}: {one} "
                    f"on sample {i} (prompt {p!r}, completion {c!r})"
                ) from None
        raise RewardLabError(
            f"the gold function of task {task.name!r} raised {type(exc).__name__}: {exc} "
            f"on a batch of {len(prompts)} samples"
        ) from None
    scores = list(scores)
    if len(scores) != len(prompts):
        raise RewardLabError(
            f"the gold function of task {task.name!r} returned {len(scores)} scores "
            f"for {len(prompts)} samples"
        )
    out = []
    for i, s in enumerate(scores):
        try:
            v = float(s)
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v):
            raise RewardLabError(
                f"the gold function of task {task.name!r} returned {s!r} (not a finite number) "
                f"on sample {i} (prompt {prompts[i]!r}, completion {completions[i]!r})"
            )
        out.append(v)
    return out
