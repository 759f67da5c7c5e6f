"""A neural gold, as in Gao et al. 2022: a built-in task's prompts and demonstrations, judged by a
fixed reward network larger than the proxies that learn from its labels.

Gao, Schulman & Hilton labelled comparisons with a 6B "gold" reward model and trained smaller
proxies on them; gold was continuous and kept rewarding better text. Here the gold network is a
teacher of a stated construction: a GPT-2 reward model (a transformer with a one-output head on
the last token) of `n_layer` blocks and width `n_embd`, its weights drawn from N(0, `init_std`²)
with torch seeded by `teacher_seed`, never trained. On ``<bos> prompt completion <eos>`` it gives
t(x, y); the gold is

    gold(x, y) = rule_weight · (rule(x, y) − μ_r) / σ_r + (t(x, y) − μ_t) / σ_t

with μ, σ the mean and standard deviation of the base task's rule and of t over a fixed reference
set (`REFERENCE` prompts of the stream (teacher_seed, "reference"), one demonstration each at
noise 0.5), so both terms are in comparable units whatever the network's scale. The rule keeps
the gold about what the task asks; the network adds a continuous, unbounded part with no ties,
whose structure a proxy captures more of the larger it is. The weights' SHA-256 is part of the
task's cache key (`content_digest`): a different torch that draws other weights is another gold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rewardlab.common.lazy import torch
from rewardlab.errors import RewardLabError
from rewardlab.models import MIN_POSITIONS, model_config
from rewardlab.sequences import score_batched
from rewardlab.specs import ModelSpec
from rewardlab.tasks.arithmetic import Arithmetic
from rewardlab.tasks.base import build_tokenizer
from rewardlab.tasks.sorting import Sorting
from rewardlab.tasks.topics import Topics

BASES = {"arithmetic": Arithmetic, "sorting": Sorting, "topics": Topics}
REFERENCE = 2000  # reference samples that fix the gold's units
BATCH = 512


@dataclass
class NeuralGold:
    """The base task's prompts and demonstrations; gold from a fixed teacher network plus the
    base rule (module docstring)."""

    base: str = "topics"
    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    init_std: float = 0.1
    teacher_seed: int = 0
    rule_weight: float = 0.0
    base_params: dict = field(default_factory=dict)
    name: str = "neural"

    def __post_init__(self) -> None:
        if self.base not in BASES:
            raise RewardLabError(f"neural gold: base {self.base!r} is not one of {list(BASES)}")
        if self.init_std <= 0 or self.rule_weight < 0:
            raise RewardLabError("neural gold: init_std must be > 0 and rule_weight >= 0")
        self.rule = BASES[self.base](**self.base_params)
        self.vocab, self.max_new_tokens = self.rule.vocab, self.rule.max_new_tokens
        self.description = getattr(self.rule, "description", "")
        self.reward_inputs = getattr(self.rule, "reward_inputs", "")
        self.tok = build_tokenizer(self.vocab)
        spec = ModelSpec(n_layer=self.n_layer, n_embd=self.n_embd, n_head=self.n_head)
        self.params = 0
        self.teacher = self._build(spec)
        rng = np.random.default_rng([self.teacher_seed, 7])  # the reference stream
        prompts = self.rule.prompts(REFERENCE, rng)
        comps = self.rule.demonstrations(prompts, 0.5, rng)
        r, t = np.array(self.rule.gold(prompts, comps)), self.teacher_scores(prompts, comps)
        self.mu_r, self.sd_r = float(r.mean()), float(r.std()) or 1.0
        self.mu_t, self.sd_t = float(t.mean()), float(t.std()) or 1.0
        lo, hi = self.rule.gold_range
        span = self.rule_weight * (hi - lo) / self.sd_r
        self.gold_range = (-4.0 - span / 2, 4.0 + span / 2)  # the margin bins' scale, not a bound

    def _build(self, spec: ModelSpec):
        from transformers import AutoModelForSequenceClassification

        cfg = model_config(spec, self.tok, MIN_POSITIONS, num_labels=1,
                           initializer_range=self.init_std)  # fmt: skip
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.teacher_seed)
            model = AutoModelForSequenceClassification.from_config(cfg).eval()
        self.params = sum(p.numel() for p in model.parameters())
        return model

    def content_digest(self) -> str:
        """SHA-256 of the teacher's weights (names and bytes, in order)."""
        h = hashlib.sha256()
        for k, v in self.teacher.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().numpy().tobytes())
        return h.hexdigest()

    def teacher_scores(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """t(x, y) of each sample: the teacher's scalar head on ``<bos> x y <eos>``
        (`sequences.score_batched`: batches of `BATCH` rows of similar length, no gradients)."""
        return score_batched(self.teacher, self.tok, prompts, completions, BATCH).astype(np.float64)

    def prompts(self, n: int, rng: np.random.Generator) -> list[str]:
        return self.rule.prompts(n, rng)

    def demonstrations(
        self, prompts: Sequence[str], noise: float, rng: np.random.Generator
    ) -> list[str]:
        return self.rule.demonstrations(prompts, noise, rng)

    def columns(self, prompts: Sequence[str]) -> dict[str, list]:
        cols = getattr(self.rule, "columns", None)
        return cols(prompts) if cols else {}

    def gold(self, prompts: Sequence[str], completions: Sequence[str], **kw) -> list[float]:
        r = np.array(self.rule.gold(prompts, completions), float)
        t = self.teacher_scores(prompts, completions)
        g = self.rule_weight * (r - self.mu_r) / self.sd_r + (t - self.mu_t) / self.sd_t
        return g.tolist()
